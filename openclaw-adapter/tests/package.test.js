// The package's shape as OpenClaw reads it before running any code: package.json's `openclaw` block,
// the manifest, and the published file list (an npm/tarball install only gets what `files` names).

import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const pkg = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8"));
const manifest = JSON.parse(fs.readFileSync(path.join(root, "openclaw.plugin.json"), "utf8"));

/** The one runtime dependency: the official MCP SDK, pinned exactly (package-lock.json holds its tree). */
const SDK = "@modelcontextprotocol/sdk";

/** Relative imports of a module, followed transitively. */
function importGraph(entry) {
  const seen = new Set();
  const visit = (file) => {
    if (seen.has(file)) return;
    seen.add(file);
    const src = fs.readFileSync(file, "utf8");
    for (const m of src.matchAll(/^\s*(?:import|export)\s[^;]*?from\s+"([^"]+)"/gm)) {
      const spec = m[1];
      if (spec.startsWith(".")) visit(path.resolve(path.dirname(file), spec));
      else {
        assert.ok(
          spec.startsWith("node:") || spec.startsWith(`${SDK}/`),
          `${path.relative(root, file)} imports ${spec}: only node: builtins and ${SDK} are allowed`,
        );
      }
    }
  };
  visit(path.join(root, entry));
  return [...seen].map((f) => path.relative(root, f));
}

describe("package", () => {
  it("declares a plain-JS entry that exists, with the plugin API compat range", () => {
    assert.equal(pkg.type, "module");
    assert.deepEqual(pkg.openclaw.extensions, ["./index.js"]);
    assert.ok(fs.existsSync(path.join(root, "index.js")));
    assert.equal(pkg.openclaw.compat.pluginApi, ">=2026.9.6");
    assert.equal(pkg.peerDependenciesMeta.openclaw.optional, true);
  });

  it("depends on the server package, at this repository's version (Cargo.toml), and the MCP SDK", () => {
    const cargoVersion = fs.readFileSync(path.join(root, "..", "Cargo.toml"), "utf8").match(/^version = "([^"]+)"/m)[1];
    // Optional: npm (and OpenClaw's managed install) installs it, while a linked source checkout
    // (`plugins install -l`, the server from cargo) still loads — OpenClaw refuses to load a plugin
    // whose required dependency is missing.
    assert.deepEqual(pkg.optionalDependencies, { "bitrouter-supervisor-mcp": cargoVersion });
    assert.deepEqual(Object.keys(pkg.dependencies), [SDK]);
    assert.match(pkg.dependencies[SDK], /^\d+\.\d+\.\d+$/, "an exact version: what the tests ran is what users get");
    assert.equal(pkg.version, cargoVersion);
    assert.equal(pkg.devDependencies, undefined);
    assert.equal(pkg.private, undefined, "a private package cannot be published");
  });

  it("commits a lockfile that installs the pinned SDK", () => {
    const lock = JSON.parse(fs.readFileSync(path.join(root, "package-lock.json"), "utf8"));
    assert.deepEqual(lock.packages[""].dependencies, pkg.dependencies);
    assert.equal(lock.packages[`node_modules/${SDK}`].version, pkg.dependencies[SDK]);
    // The SDK runs on the Node the plugin supports (20) and on OpenClaw's (26).
    const installed = JSON.parse(fs.readFileSync(path.join(root, "node_modules", SDK, "package.json"), "utf8"));
    assert.equal(installed.version, pkg.dependencies[SDK], "node_modules is current: run npm install");
    assert.match(installed.engines.node, /^>=(18|20)$/);
  });

  it("asks OpenClaw to verify the platform package of every target the server is packaged for", () => {
    // OpenClaw's managed install runs with --ignore-scripts; requiredPlatformPackages makes it check that
    // npm materialised the host's optional platform package (retry once, roll back otherwise).
    const targets = JSON.parse(fs.readFileSync(path.join(root, "..", "npm", "bitrouter-supervisor-mcp", "targets.json"), "utf8"));
    assert.deepEqual(
      pkg.openclaw.install.requiredPlatformPackages,
      Object.values(targets).map((t) => `bitrouter-supervisor-mcp-${t.suffix}`),
    );
  });

  it("publishes every module the entry imports", () => {
    const files = importGraph("index.js");
    const published = (f) => pkg.files.some((p) => (p.endsWith("/") ? f.startsWith(p) : f === p));
    for (const f of files) assert.ok(published(f), `${f} is missing from package.json files`);
    assert.ok(pkg.files.includes("openclaw.plugin.json"));
  });
});

describe("manifest", () => {
  it("owns the bitrouter provider and declares its env credential", () => {
    assert.equal(manifest.id, "bitrouter");
    assert.deepEqual(manifest.providers, ["bitrouter"]);
    assert.deepEqual(manifest.setup.providers, [{ id: "bitrouter", envVars: ["BITROUTER_API_KEY"] }]);
    assert.equal(manifest.activation.onStartup, true);
  });

  it("contributes the MCP server over streamable HTTP at the default mcpPort", () => {
    assert.deepEqual(manifest.mcpServers.bitrouter, { url: "http://127.0.0.1:8788/mcp", transport: "streamable-http" });
  });

  it("declares no agent tools (the BitRouter tools come through MCP)", () => {
    assert.equal(manifest.contracts?.tools?.length ?? 0, 0);
  });

  it("has a UI hint for every config field", () => {
    assert.deepEqual(Object.keys(manifest.uiHints).sort(), Object.keys(manifest.configSchema.properties).sort());
  });
});
