// Plugin config: defaults match the manifest, the server's config file carries only the keys the
// server accepts, and the URLs the adapter derives from host and ports.

import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";

import {
  DEFAULTS,
  SERVER_CONFIG_KEYS,
  adapterPaths,
  daemonBaseUrl,
  expandHome,
  fallbackStateDir,
  mcpUrl,
  resolveConfig,
  serverConfig,
  writeServerConfigFile,
} from "../src/config.js";
import { tempDir } from "./helpers/fakes.js";

const manifest = JSON.parse(fs.readFileSync(new URL("../openclaw.plugin.json", import.meta.url), "utf8"));
const schema = manifest.configSchema;

describe("config", () => {
  it("applies the seed plugin's defaults", () => {
    const c = resolveConfig(undefined);
    assert.deepEqual(c, {
      port: 8787,
      host: "127.0.0.1",
      autoStart: true,
      healthCheckIntervalMs: 30000,
      interceptAllModels: false,
      providers: {},
      models: {},
      mcpPort: 8788,
    });
  });

  it("uses the same defaults as the manifest's configSchema", () => {
    for (const [k, v] of Object.entries(DEFAULTS)) assert.deepEqual(schema.properties[k].default, v, k);
    assert.deepEqual(schema.properties.providers.default, {});
    assert.deepEqual(schema.properties.models.default, {});
    assert.equal(schema.additionalProperties, false);
    const all = [...SERVER_CONFIG_KEYS, "binaryPath", "mcpPort", "dataDir"].sort();
    assert.deepEqual(Object.keys(schema.properties).sort(), all);
  });

  it("writes only the server's keys to its config file, owner-readable only", () => {
    const dir = tempDir();
    const file = path.join(dir, "nested", "cfg.json");
    const cfg = resolveConfig({
      port: 9001,
      interceptAllModels: true,
      providers: { openrouter: { derives: "openai", apiBase: "https://openrouter.ai/api/v1", apiKey: "${OPENROUTER_API_KEY}" } },
      models: { smart: { strategy: "priority", endpoints: [{ provider: "openrouter", modelId: "x" }] } },
      binaryPath: "/opt/bitrouter-mcp",
      mcpPort: 9002,
      dataDir: "/var/lib/bitrouter",
    });
    writeServerConfigFile(file, cfg);
    const written = JSON.parse(fs.readFileSync(file, "utf8"));
    assert.deepEqual(Object.keys(written).sort(), [...SERVER_CONFIG_KEYS].sort());
    assert.equal(written.port, 9001);
    assert.equal(written.interceptAllModels, true);
    assert.equal(written.providers.openrouter.apiKey, "${OPENROUTER_API_KEY}");
    assert.equal(written.models.smart.endpoints[0].modelId, "x");
    if (process.platform !== "win32") assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.deepEqual(fs.readdirSync(path.dirname(file)), ["cfg.json"], "no temp file left behind");
  });

  it("ignores wrong types instead of passing them on", () => {
    const c = resolveConfig({ port: "80", autoStart: "yes", models: [], healthCheckIntervalMs: 5 });
    assert.equal(c.port, 8787);
    assert.equal(c.autoStart, true);
    assert.deepEqual(c.models, {});
    assert.equal(c.healthCheckIntervalMs, 1000, "clamped to at least one second");
    assert.deepEqual(Object.keys(serverConfig(c)), SERVER_CONFIG_KEYS);
  });

  it("derives the provider base URL and the MCP URL", () => {
    assert.equal(daemonBaseUrl(resolveConfig({})), "http://127.0.0.1:8787/v1");
    assert.equal(daemonBaseUrl(resolveConfig({ host: "0.0.0.0", port: 9000 })), "http://127.0.0.1:9000/v1");
    assert.equal(daemonBaseUrl(resolveConfig({ host: "::1" })), "http://[::1]:8787/v1");
    assert.equal(daemonBaseUrl(resolveConfig({ host: "localhost" })), "http://localhost:8787/v1");
    assert.equal(mcpUrl(resolveConfig({ mcpPort: 18788 })), "http://127.0.0.1:18788/mcp");
  });

  it("expands ~ in paths and places adapter files under OpenClaw's state dir", () => {
    assert.equal(expandHome("~/bin/x", "/home/u"), path.join("/home/u", "bin/x"));
    assert.equal(expandHome("/abs", "/home/u"), "/abs");
    const c = resolveConfig({});
    const p = adapterPaths("/state", c);
    assert.equal(p.configFile, path.join("/state", "bitrouter", "bitrouter-mcp.config.json"));
    assert.equal(p.dataDir, path.join("/state", "bitrouter", "data"));
    assert.equal(adapterPaths("/state", resolveConfig({ dataDir: "/d" })).dataDir, "/d");
  });

  it("finds OpenClaw's state dir from the environment when OpenClaw does not say", () => {
    assert.equal(fallbackStateDir({ OPENCLAW_STATE_DIR: "/s" }), "/s");
    assert.equal(fallbackStateDir({ OPENCLAW_HOME: "/h" }), path.join("/h", ".openclaw"));
  });
});
