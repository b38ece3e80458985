// Where the plugin looks for bitrouter-mcp, in order, and what it says when it is missing.

import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";

import { resolveBinary as resolve, SERVER_PACKAGE } from "../src/binary.js";
import { tempDir } from "./helpers/fakes.js";

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const SERVER_PACKAGE_SRC = path.join(REPO, "npm", SERVER_PACKAGE);

/** A require that finds no npm package (the plugin installed from a clone, without npm). */
const noNpm = createRequire(path.join(tempDir(), "none.js"));
/** resolveBinary with no npm install unless the test gives one. */
const resolveBinary = (opts) => resolve({ npmRequire: noNpm, ...opts });

/**
 * An npm project as OpenClaw's managed install leaves it: node_modules/<server package> (the real
 * package source from this repository) and, unless `platformPackage` is false, the platform package npm
 * picked for this host with bin/bitrouter-mcp and bin/bitrouter. Returns a require from inside it.
 */
function npmProject({ platformPackage = true } = {}) {
  const root = tempDir();
  const nm = path.join(root, "node_modules");
  fs.cpSync(SERVER_PACKAGE_SRC, path.join(nm, SERVER_PACKAGE), { recursive: true });
  const server = createRequire(path.join(nm, SERVER_PACKAGE, "lib", "binary.js"))("./binary.js");
  const target = server.hostTarget();
  const pkgDir = path.join(nm, server.platformPackageName(target ?? "x86_64-unknown-linux-gnu"));
  if (platformPackage) {
    fs.mkdirSync(pkgDir, { recursive: true });
    fs.writeFileSync(path.join(pkgDir, "package.json"), JSON.stringify({ name: path.basename(pkgDir) }));
    exe(path.join(pkgDir, "bin"), "bitrouter-mcp");
    exe(path.join(pkgDir, "bin"), "bitrouter");
  }
  return { npmRequire: createRequire(path.join(root, "plugin.js")), bin: path.join(pkgDir, "bin", "bitrouter-mcp"), supported: !!target };
}

/** Makes an executable file and returns its path. */
function exe(dir, name = "bitrouter-mcp") {
  fs.mkdirSync(dir, { recursive: true });
  const p = path.join(dir, name);
  fs.writeFileSync(p, "#!/bin/sh\n", { mode: 0o755 });
  return p;
}

describe("resolveBinary", () => {
  const root = tempDir();
  const home = path.join(root, "home");
  const onPath = path.join(root, "path-bin");
  const configured = exe(path.join(root, "configured"));
  const inPath = exe(onPath);
  const inCargo = exe(path.join(home, ".cargo", "bin"));
  const PATH = [path.join(root, "empty"), onPath].join(":");

  it("uses the configured binaryPath first", () => {
    assert.deepEqual(resolveBinary({ binaryPath: configured, env: { PATH }, home, platform: "linux" }), {
      ok: true,
      path: configured,
      source: "binaryPath",
    });
  });

  it("then bitrouter-mcp on PATH", () => {
    assert.deepEqual(resolveBinary({ env: { PATH }, home, platform: "linux" }), { ok: true, path: inPath, source: "PATH" });
  });

  it("then ~/.cargo/bin/bitrouter-mcp", () => {
    assert.deepEqual(resolveBinary({ env: { PATH: path.join(root, "empty") }, home, platform: "linux" }), {
      ok: true,
      path: inCargo,
      source: "cargo",
    });
  });

  it("honours CARGO_HOME for the cargo location", () => {
    const cargoHome = path.join(root, "cargo-home");
    const p = exe(path.join(cargoHome, "bin"));
    assert.equal(resolveBinary({ env: { PATH: "", CARGO_HOME: cargoHome }, home: path.join(root, "nohome"), platform: "linux" }).path, p);
  });

  it("skips files that are not executable", () => {
    const dir = path.join(root, "noexec");
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, "bitrouter-mcp"), "", { mode: 0o644 });
    const r = resolveBinary({ env: { PATH: dir }, home: path.join(root, "nohome"), platform: "linux" });
    assert.equal(r.ok, false);
  });

  it("when missing, says so and how to install it", () => {
    const r = resolveBinary({ env: { PATH: path.join(root, "empty") }, home: path.join(root, "nohome"), platform: "linux" });
    assert.equal(r.ok, false);
    assert.match(r.message, /bitrouter-mcp was not found/);
    assert.match(r.message, /cargo install --path <path-to-bitrouter-mcp-repo>/);
    assert.match(r.message, /make run/);
    assert.match(r.message, /binaryPath/);
    assert.deepEqual(r.looked, [
      `${SERVER_PACKAGE} (npm)`,
      path.join(root, "empty", "bitrouter-mcp"),
      path.join(root, "nohome", ".cargo", "bin", "bitrouter-mcp"),
    ]);
  });

  it("a configured binaryPath that does not exist is an error naming it, not a silent fallback", () => {
    const r = resolveBinary({ binaryPath: "/nope/bitrouter-mcp", env: { PATH }, home, platform: "linux" });
    assert.equal(r.ok, false);
    assert.match(r.message, /configured binaryPath "\/nope\/bitrouter-mcp"/);
    assert.match(r.message, /cargo install --path/);
  });

  describe("installed by npm (the plugin's dependency)", () => {
    const project = npmProject();
    const skip = project.supported ? false : "no platform package is defined for this host";

    it("finds the server npm installed before PATH and ~/.cargo/bin", { skip }, () => {
      assert.deepEqual(resolve({ npmRequire: project.npmRequire, env: { PATH }, home, platform: "linux" }), {
        ok: true,
        path: project.bin,
        source: "npm",
      });
    });

    it("a configured binaryPath still wins over the npm install", { skip }, () => {
      assert.deepEqual(resolve({ npmRequire: project.npmRequire, binaryPath: configured, env: { PATH }, home, platform: "linux" }), {
        ok: true,
        path: configured,
        source: "binaryPath",
      });
    });

    it("with the platform package left out by npm, falls back to PATH, and says why when nothing is found", { skip }, () => {
      const partial = npmProject({ platformPackage: false });
      assert.equal(resolve({ npmRequire: partial.npmRequire, env: { PATH }, home, platform: "linux" }).source, "PATH");
      const r = resolve({ npmRequire: partial.npmRequire, env: { PATH: "" }, home: path.join(root, "nohome"), platform: "linux" });
      assert.equal(r.ok, false);
      assert.match(r.message, /optional dependency bitrouter-supervisor-mcp-[a-z0-9-]+ is not installed/);
      assert.match(r.message, /openclaw plugins install bitrouter-supervisor-openclaw/);
    });
  });
});
