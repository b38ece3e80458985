// @ts-check
/**
 * Plugin configuration: defaults, the file handed to `bitrouter-mcp serve --config`, and the paths the
 * adapter owns. Pure functions plus one atomic file write (and reading the generated contract once at
 * import); no process or network work here.
 *
 * The server rejects unknown keys, so only the keys it accepts are written to its config file; the
 * adapter-only keys (binaryPath, mcpPort, dataDir) stay here. Defaults, ranges and the server's keys come
 * from the generated manifest and server facts, never restated.
 */

import fs from "node:fs";
import os from "node:os";
import path from "node:path";

/** Plugin id, provider id and the key under `plugins.entries`. */
export const PLUGIN_ID = "bitrouter";
export const PROVIDER_ID = "bitrouter";
/** MCP resource holding the route table. */
export const ROUTES_URI = "bitrouter://routes";

/**
 * @typedef {object} EndpointConfig
 * @property {string} provider
 * @property {string} modelId
 * @property {string} [apiKey]
 * @property {string} [apiBase]
 *
 * @typedef {object} ModelRouteConfig
 * @property {"priority"|"load_balance"} [strategy]
 * @property {EndpointConfig[]} endpoints
 *
 * @typedef {object} AdapterConfig
 * @property {number} port                  BitRouter daemon port (OpenAI-compatible API).
 * @property {string} host                  BitRouter daemon bind host.
 * @property {boolean} exposeToNetwork      Allow a non-loopback host (the daemon's keys become reachable).
 * @property {boolean} autoStart            Start bitrouter-mcp with the gateway.
 * @property {number} healthCheckIntervalMs Server health check period (the adapter's refresh uses
 *                                          {@link refreshIntervalMs}).
 * @property {boolean} interceptAllModels   Route every model through BitRouter.
 * @property {number} metricsPollMs         How often the server reads the daemon's traffic counters (0: off).
 * @property {boolean} enforceRoutes        Server also deletes foreign dynamic routes for unconfigured names.
 * @property {Record<string, object>} providers
 * @property {Record<string, ModelRouteConfig>} models
 * @property {string} [binaryPath]          Explicit path of bitrouter-mcp.
 * @property {number} mcpPort               Port of bitrouter-mcp's streamable HTTP endpoint.
 * @property {string} [dataDir]             bitrouter-mcp data directory.
 */

/**
 * The config contract, generated from the server's config model (see the repository's
 * `src/routing/contract.rs`): the manifest's configSchema (defaults, ranges; OpenClaw validates every
 * config write with it) and the server facts beside this file (built-in providers, the `${NAME}`
 * grammar, which keys the server accepts). Read, never restated here.
 * @param {string} rel path relative to this module
 */
function readJson(rel) {
  return JSON.parse(fs.readFileSync(new URL(rel, import.meta.url), "utf8"));
}
export const MANIFEST = Object.freeze(readJson("../openclaw.plugin.json"));
/**
 * @type {{
 *   builtinProviders: {name: string, envPrefix: string, envVar: string}[],
 *   envReference: string,
 *   metricsPollMs: {off: number, min: number, max: number},
 *   serverConfigKeys: string[],
 * }}
 */
export const SERVER_FACTS = Object.freeze(readJson("./server-facts.json"));
const SCHEMA = MANIFEST.configSchema.properties;

/** Defaults of the scalar keys, from the manifest's configSchema. */
export const DEFAULTS = Object.freeze(
  Object.fromEntries(
    Object.entries(SCHEMA)
      .filter(([, s]) => s.default !== undefined && typeof s.default !== "object")
      .map(([k, s]) => [k, s.default]),
  ),
);

/** The server's accepted range for `healthCheckIntervalMs`. */
export const HEALTH_CHECK_INTERVAL_RANGE = Object.freeze({
  min: SCHEMA.healthCheckIntervalMs.minimum,
  max: SCHEMA.healthCheckIntervalMs.maximum,
});
/** The server's accepted range for `metricsPollMs` when it is not 0 (off). */
export const METRICS_POLL_RANGE = Object.freeze({ min: SERVER_FACTS.metricsPollMs.min, max: SERVER_FACTS.metricsPollMs.max });
/** Floor of the adapter's own route-table refresh timer (the server may health-check faster). */
export const MIN_REFRESH_INTERVAL_MS = 1000;

/** Keys the server's config file accepts; the manifest's other keys are the adapter's own. */
export const SERVER_CONFIG_KEYS = Object.freeze([...SERVER_FACTS.serverConfigKeys]);

/** A provider key that names a variable (`${NAME}`, the whole value), exactly as the server reads it. */
const ENV_REFERENCE = new RegExp(SERVER_FACTS.envReference);

/**
 * The variable a provider key refers to, or undefined for a literal key.
 * @param {unknown} value
 */
export function envReference(value) {
  if (typeof value !== "string") return undefined;
  return ENV_REFERENCE.exec(value)?.[1];
}

/** @param {unknown} v */
function isRecord(v) {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Expands a leading `~` to the home directory.
 * @param {string} p
 * @param {string} [home]
 */
export function expandHome(p, home = os.homedir()) {
  if (p === "~") return home;
  if (p.startsWith("~/") || p.startsWith("~\\")) return path.join(home, p.slice(2));
  return p;
}

/**
 * @param {number} v
 * @param {number} min
 * @param {number} max
 */
function clampInt(v, min, max) {
  return Math.min(max, Math.max(min, Math.round(v)));
}

/**
 * Applies defaults to the raw `plugins.entries.bitrouter.config` object.
 * @param {unknown} raw
 * @returns {AdapterConfig}
 */
export function resolveConfig(raw) {
  const c = isRecord(raw) ? raw : {};
  /** @type {(k: string, d: number) => number} */
  const num = (k, d) => (typeof c[k] === "number" && Number.isFinite(c[k]) ? /** @type {number} */ (c[k]) : d);
  /** @type {(k: string, d: boolean) => boolean} */
  const bool = (k, d) => (typeof c[k] === "boolean" ? /** @type {boolean} */ (c[k]) : d);
  /** @type {(k: string) => string | undefined} */
  const str = (k) => (typeof c[k] === "string" && /** @type {string} */ (c[k]).trim() !== "" ? /** @type {string} */ (c[k]).trim() : undefined);
  /** @type {AdapterConfig} */
  const cfg = {
    port: num("port", DEFAULTS.port),
    host: str("host") ?? DEFAULTS.host,
    exposeToNetwork: bool("exposeToNetwork", DEFAULTS.exposeToNetwork),
    autoStart: bool("autoStart", DEFAULTS.autoStart),
    // Passed to the server as given; only values it would refuse are pulled into its range.
    healthCheckIntervalMs: clampInt(
      num("healthCheckIntervalMs", DEFAULTS.healthCheckIntervalMs),
      HEALTH_CHECK_INTERVAL_RANGE.min,
      HEALTH_CHECK_INTERVAL_RANGE.max,
    ),
    interceptAllModels: bool("interceptAllModels", DEFAULTS.interceptAllModels),
    metricsPollMs: metricsPoll(num("metricsPollMs", DEFAULTS.metricsPollMs)),
    enforceRoutes: bool("enforceRoutes", DEFAULTS.enforceRoutes),
    providers: isRecord(c.providers) ? /** @type {Record<string, object>} */ (c.providers) : {},
    models: isRecord(c.models) ? /** @type {Record<string, ModelRouteConfig>} */ (c.models) : {},
    mcpPort: num("mcpPort", DEFAULTS.mcpPort),
  };
  const binaryPath = str("binaryPath");
  if (binaryPath) cfg.binaryPath = expandHome(binaryPath);
  const dataDir = str("dataDir");
  if (dataDir) cfg.dataDir = expandHome(dataDir);
  return cfg;
}

/**
 * `metricsPollMs` in the server's range: 0 (or less) turns polling off, anything else is 50-60000.
 * @param {number} v
 */
function metricsPoll(v) {
  if (v <= 0) return 0;
  return clampInt(v, METRICS_POLL_RANGE.min, METRICS_POLL_RANGE.max);
}

/**
 * Period of the adapter's own route-table refresh: `healthCheckIntervalMs`, but not below
 * {@link MIN_REFRESH_INTERVAL_MS} (route changes also arrive as MCP resource notifications).
 * @param {AdapterConfig} cfg
 */
export function refreshIntervalMs(cfg) {
  return Math.max(MIN_REFRESH_INTERVAL_MS, cfg.healthCheckIntervalMs);
}

/**
 * The object written to the server's `--config` file: the keys the server accepts, adapter keys removed.
 * @param {AdapterConfig} cfg
 */
export function serverConfig(cfg) {
  /** @type {Record<string, unknown>} */
  const out = {};
  for (const k of SERVER_CONFIG_KEYS) out[k] = /** @type {any} */ (cfg)[k];
  return out;
}

/**
 * Host part of a URL for a bind address: wildcard binds are reached on loopback, IPv6 gets brackets.
 * @param {string} host
 */
export function clientHost(host) {
  if (host === "0.0.0.0" || host === "") return "127.0.0.1";
  if (host === "::" || host === "[::]") return "[::1]";
  if (host.includes(":") && !host.startsWith("[")) return `[${host}]`;
  return host;
}

/** OpenAI-compatible base URL of the BitRouter daemon. @param {AdapterConfig} cfg */
export function daemonBaseUrl(cfg) {
  return `http://${clientHost(cfg.host)}:${cfg.port}/v1`;
}

/** Streamable HTTP endpoint of bitrouter-mcp. @param {AdapterConfig} cfg */
export function mcpUrl(cfg) {
  return `http://127.0.0.1:${cfg.mcpPort}/mcp`;
}

/**
 * OpenClaw's state directory, resolved the way OpenClaw does when it cannot tell us
 * (OPENCLAW_STATE_DIR, else OPENCLAW_HOME/.openclaw, else ~/.openclaw).
 * @param {NodeJS.ProcessEnv} [env]
 */
export function fallbackStateDir(env = process.env) {
  if (env.OPENCLAW_STATE_DIR) return expandHome(env.OPENCLAW_STATE_DIR);
  const home = env.OPENCLAW_HOME ? expandHome(env.OPENCLAW_HOME) : os.homedir();
  return path.join(home, ".openclaw");
}

/**
 * Files and folders the adapter owns below OpenClaw's state directory.
 * @param {string} stateDir
 * @param {AdapterConfig} cfg
 */
export function adapterPaths(stateDir, cfg) {
  const root = path.join(stateDir, "bitrouter");
  return {
    root,
    configFile: path.join(root, "bitrouter-mcp.config.json"),
    logFile: path.join(root, "bitrouter-mcp.log"),
    dataDir: cfg.dataDir ?? path.join(root, "data"),
  };
}

/**
 * Writes the server config file atomically with owner-only permissions (it may carry provider keys).
 * @param {string} file
 * @param {AdapterConfig} cfg
 * @returns {string} the file path
 */
export function writeServerConfigFile(file, cfg) {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(serverConfig(cfg), null, 2)}\n`, { mode: 0o600 });
  fs.renameSync(tmp, file);
  return file;
}
