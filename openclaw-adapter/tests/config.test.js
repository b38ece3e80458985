// Plugin config: defaults match the manifest, the server's config file carries only the keys the
// server accepts, and the URLs the adapter derives from host and ports.

import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";

import {
  DEFAULTS,
  HEALTH_CHECK_INTERVAL_RANGE,
  METRICS_POLL_RANGE,
  MIN_REFRESH_INTERVAL_MS,
  SERVER_CONFIG_KEYS,
  adapterPaths,
  daemonBaseUrl,
  expandHome,
  fallbackStateDir,
  mcpUrl,
  refreshIntervalMs,
  resolveConfig,
  serverConfig,
  writeServerConfigFile,
} from "../src/config.js";
import { tempDir } from "./helpers/fakes.js";

const manifest = JSON.parse(fs.readFileSync(new URL("../openclaw.plugin.json", import.meta.url), "utf8"));
const schema = manifest.configSchema;

describe("config", () => {
  it("applies the manifest's defaults (the seed plugin's)", () => {
    const c = resolveConfig(undefined);
    assert.deepEqual(c, { ...DEFAULTS, providers: {}, models: {} });
    assert.equal(c.port, schema.properties.port.default);
    assert.equal(schema.additionalProperties, false);
  });

  it("checks values against the manifest's limits (read from it, not restated)", () => {
    const hc = schema.properties.healthCheckIntervalMs;
    assert.equal(hc.type, "integer");
    assert.deepEqual(HEALTH_CHECK_INTERVAL_RANGE, { min: hc.minimum, max: hc.maximum });
    const mp = schema.properties.metricsPollMs;
    assert.equal(mp.minimum, 0, "0 turns polling off");
    assert.equal(METRICS_POLL_RANGE.max, mp.maximum);
    assert.ok(METRICS_POLL_RANGE.min > 0);
    for (const k of ["metricsPollMs", "enforceRoutes"]) {
      assert.match(schema.properties[k].description, /\S/, k);
      assert.equal(manifest.uiHints[k].advanced, true, k);
    }
  });

  it("writes only the server's keys to its config file, owner-readable only", () => {
    const dir = tempDir();
    const file = path.join(dir, "nested", "cfg.json");
    const cfg = resolveConfig({
      port: 9001,
      interceptAllModels: true,
      healthCheckIntervalMs: 200,
      metricsPollMs: 0,
      enforceRoutes: true,
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
    assert.equal(written.healthCheckIntervalMs, 200, "the user's value, below the adapter's own refresh floor");
    assert.equal(written.metricsPollMs, 0);
    assert.equal(written.enforceRoutes, true);
    assert.equal(written.providers.openrouter.apiKey, "${OPENROUTER_API_KEY}");
    assert.equal(written.models.smart.endpoints[0].modelId, "x");
    if (process.platform !== "win32") assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.deepEqual(fs.readdirSync(path.dirname(file)), ["cfg.json"], "no temp file left behind");
  });

  it("ignores wrong types instead of passing them on", () => {
    const c = resolveConfig({
      port: "80",
      autoStart: "yes",
      models: [],
      healthCheckIntervalMs: "5",
      metricsPollMs: "fast",
      enforceRoutes: "yes",
    });
    assert.equal(c.port, 8787);
    assert.equal(c.autoStart, true);
    assert.deepEqual(c.models, {});
    assert.equal(c.healthCheckIntervalMs, 30000);
    assert.equal(c.metricsPollMs, 250);
    assert.equal(c.enforceRoutes, false);
    assert.deepEqual(Object.keys(serverConfig(c)), SERVER_CONFIG_KEYS);
  });

  it("passes healthCheckIntervalMs through, pulling only out-of-range values into the server's range", () => {
    const hc = (v) => resolveConfig({ healthCheckIntervalMs: v }).healthCheckIntervalMs;
    assert.equal(hc(100), 100);
    assert.equal(hc(250), 250, "no longer raised to one second");
    assert.equal(hc(86_400_000), 86_400_000);
    assert.equal(hc(5), 100);
    assert.equal(hc(1e12), 86_400_000);
    assert.equal(hc(1500.4), 1500, "the server wants an integer");
    assert.equal(serverConfig(resolveConfig({ healthCheckIntervalMs: 100 })).healthCheckIntervalMs, 100);
  });

  it("keeps the adapter's own refresh at least a second apart", () => {
    assert.equal(MIN_REFRESH_INTERVAL_MS, 1000);
    assert.equal(refreshIntervalMs(resolveConfig({ healthCheckIntervalMs: 100 })), 1000);
    assert.equal(refreshIntervalMs(resolveConfig({ healthCheckIntervalMs: 1000 })), 1000);
    assert.equal(refreshIntervalMs(resolveConfig({})), 30000);
    assert.equal(refreshIntervalMs(resolveConfig({ healthCheckIntervalMs: 86_400_000 })), 86_400_000);
  });

  it("passes metricsPollMs through: 0 is off, other values within 50-60000", () => {
    const mp = (v) => resolveConfig({ metricsPollMs: v }).metricsPollMs;
    assert.equal(mp(0), 0);
    assert.equal(mp(50), 50);
    assert.equal(mp(1000), 1000);
    assert.equal(mp(60_000), 60_000);
    assert.equal(mp(20), 50);
    assert.equal(mp(100_000), 60_000);
    assert.equal(mp(-5), 0);
    assert.equal(mp(75.6), 76);
  });

  it("passes enforceRoutes through", () => {
    assert.equal(resolveConfig({ enforceRoutes: true }).enforceRoutes, true);
    assert.equal(serverConfig(resolveConfig({ enforceRoutes: true })).enforceRoutes, true);
    assert.equal(serverConfig(resolveConfig({})).enforceRoutes, false);
    assert.equal(serverConfig(resolveConfig({})).metricsPollMs, 250);
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

it("OpenClaw's token is limited to the virtual models and direct routing in selective mode", async () => {
  const { tokenModels } = await import("../src/runtime.js");
  assert.deepEqual(
    tokenModels({ interceptAllModels: false, models: { smart: {}, fast: {} } }),
    ["fast", "smart", "*:*"],
  );
  assert.equal(tokenModels({ interceptAllModels: true, models: { smart: {} } }), undefined);
  assert.equal(tokenModels({ interceptAllModels: false, models: {} }), undefined);
});
