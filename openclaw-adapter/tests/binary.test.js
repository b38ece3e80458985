// Where the plugin looks for bitrouter-mcp, in order, and what it says when it is missing.

import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";

import { resolveBinary } from "../src/binary.js";
import { tempDir } from "./helpers/fakes.js";

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
    assert.deepEqual(r.looked, [path.join(root, "empty", "bitrouter-mcp"), path.join(root, "nohome", ".cargo", "bin", "bitrouter-mcp")]);
  });

  it("a configured binaryPath that does not exist is an error naming it, not a silent fallback", () => {
    const r = resolveBinary({ binaryPath: "/nope/bitrouter-mcp", env: { PATH }, home, platform: "linux" });
    assert.equal(r.ok, false);
    assert.match(r.message, /configured binaryPath "\/nope\/bitrouter-mcp"/);
    assert.match(r.message, /cargo install --path/);
  });
});
