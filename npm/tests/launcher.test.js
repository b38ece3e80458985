// The `bitrouter-mcp` launcher of the main npm package, run by Node against a platform package whose
// native binary is a shell script: arguments, stdin/stdout/stderr, exit codes and signals must pass
// through unchanged, and a missing platform package must be a clear error.
"use strict";

const assert = require("node:assert/strict");
const { spawn, spawnSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { describe, it, after } = require("node:test");

const MAIN_SRC = path.join(__dirname, "..", "bitrouter-supervisor-mcp");
const { hostTarget, platformPackageName, findBinary, MAIN_PACKAGE } = require(path.join(MAIN_SRC, "lib", "binary.js"));

const root = fs.mkdtempSync(path.join(os.tmpdir(), "bitrouter-npm-launcher-"));
after(() => fs.rmSync(root, { recursive: true, force: true }));

/** node_modules with the main package and (optionally) this host's platform package running `script`. */
function install(name, script) {
  const nm = path.join(root, name, "node_modules");
  fs.cpSync(MAIN_SRC, path.join(nm, MAIN_PACKAGE), { recursive: true });
  if (script !== undefined) {
    const pkg = path.join(nm, platformPackageName(hostTarget()));
    fs.mkdirSync(path.join(pkg, "bin"), { recursive: true });
    fs.writeFileSync(path.join(pkg, "package.json"), JSON.stringify({ name: path.basename(pkg) }));
    fs.writeFileSync(path.join(pkg, "bin", "bitrouter-mcp"), `#!/bin/sh\n${script}\n`, { mode: 0o755 });
  }
  return path.join(nm, MAIN_PACKAGE, "bin", "bitrouter-mcp.js");
}

const skip = process.platform === "win32" || !hostTarget() ? "needs a POSIX host with a platform package" : false;

describe("launcher", { skip }, () => {
  it("passes arguments, stdin, stdout, stderr and the exit code through", () => {
    const launcher = install("io", 'printf "args:%s|" "$@"; cat; echo to-stderr >&2; exit 7');
    const r = spawnSync(process.execPath, [launcher, "serve", "--stdio", "a b"], { input: "from-stdin", encoding: "utf8" });
    assert.equal(r.stdout, "args:serve|args:--stdio|args:a b|from-stdin");
    assert.equal(r.stderr, "to-stderr\n");
    assert.equal(r.status, 7);
  });

  it("delivers SIGTERM to the binary and exits as it does", async () => {
    const launcher = install("signal", 'trap "echo got-term; exit 42" TERM; echo ready; while :; do sleep 0.05; done');
    const child = spawn(process.execPath, [launcher], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    await new Promise((resolve) => child.stdout.on("data", (d) => { out += d; if (out.includes("ready")) resolve(); }));
    child.kill("SIGTERM");
    const code = await new Promise((resolve) => child.on("exit", (c) => resolve(c)));
    assert.match(out, /got-term/);
    assert.equal(code, 42);
  });

  it("on a Node with process.execve, the binary replaces the launcher (same pid, signals go straight to it)", {
    skip: typeof process.execve === "function" ? false : `Node ${process.version} has no process.execve: the launcher spawns and forwards`,
  }, () => {
    const launcher = install("execve", "echo $$");
    const child = spawn(process.execPath, [launcher], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (d) => { out += d; });
    return new Promise((resolve) => child.on("exit", () => { assert.equal(out.trim(), String(child.pid)); resolve(); }));
  });

  it("dies of the signal that killed the binary", () => {
    const launcher = install("killed", "kill -KILL $$");
    const r = spawnSync(process.execPath, [launcher]);
    assert.equal(r.signal, "SIGKILL");
  });

  it("names the missing platform package and how to get the server otherwise", () => {
    const launcher = install("missing", undefined);
    const r = spawnSync(process.execPath, [launcher, "--version"], { encoding: "utf8" });
    assert.equal(r.status, 1);
    assert.match(r.stderr, new RegExp(`optional dependency ${platformPackageName(hostTarget())} is not installed`));
    assert.match(r.stderr, /cargo install --path \./);
  });
});

describe("findBinary", () => {
  it("refuses a host with no package, listing the supported ones", () => {
    assert.throws(() => findBinary({ platform: "linux", arch: "x64", libc: "musl" }), /no binary for linux-x64 \(musl\); packages exist for linux-x64 \(glibc\), .*darwin-arm64/);
    assert.throws(() => findBinary({ platform: "freebsd", arch: "x64" }), /no binary for freebsd-x64/);
  });

  it("maps hosts to targets the way npm's os/cpu/libc fields select packages", () => {
    assert.equal(platformPackageName(hostTarget({ platform: "linux", arch: "x64", libc: "glibc" })), "bitrouter-supervisor-mcp-linux-x64-gnu");
    assert.equal(platformPackageName(hostTarget({ platform: "linux", arch: "arm64", libc: "glibc" })), "bitrouter-supervisor-mcp-linux-arm64-gnu");
    assert.equal(platformPackageName(hostTarget({ platform: "darwin", arch: "arm64" })), "bitrouter-supervisor-mcp-darwin-arm64");
    assert.equal(platformPackageName(hostTarget({ platform: "win32", arch: "x64" })), "bitrouter-supervisor-mcp-win32-x64-msvc");
  });
});
