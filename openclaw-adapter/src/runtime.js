// @ts-check
/**
 * The adapter's live state inside one OpenClaw process: the bitrouter-mcp child (when autoStart), the
 * MCP client, the route cache, the refresh timer and the BitRouter API token.
 *
 * It owns every side effect of the plugin. `register()` only builds it; the gateway service calls
 * `start`/`stop`; the hook reads `cache`; gateway methods call `status`/`routes`. Processes that run
 * no services (`openclaw agent --local`) use `warmUp`, which reads the routes once per refresh period
 * from a bitrouter-mcp that is already running, and leaves no socket or timer behind.
 */

import { spawn as nodeSpawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";

import { resolveBinary as defaultResolveBinary } from "./binary.js";
import {
  PLUGIN_ID,
  ROUTES_URI,
  adapterPaths,
  mcpUrl,
  refreshIntervalMs,
  resolveConfig,
  writeServerConfigFile,
} from "./config.js";
import { AUTH_TOKEN_ENV, McpHttpClient, isConnectionRefused } from "./mcp-client.js";
import { API_KEY_ENV } from "./provider.js";
import { RouteCache } from "./routing.js";

/**
 * Arguments of the keygen call that mints OpenClaw's credential. The gateway's service saves it under
 * this name (replacing the one an earlier start saved); short-lived processes mint without a name.
 */
export const KEYGEN_ARGS = Object.freeze({ scope: "api", exp: "30d", name: "openclaw" });

/**
 * The model allowlist of OpenClaw's token: in selective mode with virtual models configured, those
 * names plus direct `provider:model_id` routing — nothing else. With `interceptAllModels` (any model
 * may arrive) or no virtual models, no allowlist.
 * @param {{ interceptAllModels: boolean, models: Record<string, unknown> }} config
 * @returns {string[] | undefined}
 */
export function tokenModels(config) {
  const names = Object.keys(config.models ?? {});
  if (config.interceptAllModels || names.length === 0) return undefined;
  return [...names.sort(), "*:*"];
}
/** The server's refusals that ensureToken knows how to resolve. */
const NO_ACCOUNT_RE = /no active account/i;
const NAME_TAKEN_RE = /already exists/i;
/** Re-mint the token when it has less than this left. */
const TOKEN_RENEW_BEFORE_MS = 7 * 24 * 3600 * 1000;
const THIRTY_DAYS_MS = 30 * 24 * 3600 * 1000;
/** At most this many automatic restarts of bitrouter-mcp within RESTART_WINDOW_MS. */
const MAX_RESTARTS = 3;
const RESTART_WINDOW_MS = 10 * 60 * 1000;

/**
 * Tokens this plugin minted, shared across module reloads in one process, so a token we put in
 * BITROUTER_API_KEY is not mistaken for one the user set.
 * @type {Map<string, number>} token -> expiry (epoch ms)
 */
const MINTED = (() => {
  const key = Symbol.for("bitrouter-openclaw.minted-tokens");
  /** @type {any} */
  const g = globalThis;
  g[key] ??= new Map();
  return g[key];
})();

/** @param {string} s */
function stripAnsi(s) {
  // eslint-disable-next-line no-control-regex
  return s.replace(/\u001b\[[0-9;?]*[ -/]*[@-~]/g, "");
}

/** @param {unknown} e */
function msg(e) {
  return e instanceof Error ? e.message : String(e);
}

/**
 * @typedef {{ info: (m: string) => void, warn: (m: string) => void, error: (m: string) => void, debug?: (m: string) => void }} Logger
 * @typedef {{ connect: () => Promise<void>, callTool: Function, readResourceJson: Function, subscribe: Function,
 *             onResourceUpdated: Function, isConnected: () => boolean, close: () => Promise<void>, serverInfo?: any }} Client
 */

export class BitrouterRuntime {
  /**
   * @param {object} opts
   * @param {Logger} opts.logger
   * @param {unknown} [opts.pluginConfig]             api.pluginConfig at register time
   * @param {() => string} opts.resolveStateDir       OpenClaw's state directory
   * @param {object} [opts.deps]                      injectable for tests
   * @param {typeof nodeSpawn} [opts.deps.spawn]
   * @param {(url: string, o: {requestTimeoutMs?: number, eventStream?: boolean}) => Client} [opts.deps.createClient]
   * @param {typeof defaultResolveBinary} [opts.deps.resolveBinary]
   * @param {NodeJS.ProcessEnv} [opts.deps.env]
   * @param {() => number} [opts.deps.now]
   * @param {number} [opts.deps.startupTimeoutMs]
   * @param {number} [opts.deps.stopTimeoutMs]
   * @param {number} [opts.deps.pollMs]
   * @param {number} [opts.deps.restartDelayMs]
   */
  constructor({ logger, pluginConfig, resolveStateDir, deps = {} }) {
    this.logger = logger;
    this.resolveStateDir = resolveStateDir;
    this.spawn = deps.spawn ?? nodeSpawn;
    this.createClient =
      deps.createClient ??
      ((url, o) =>
        new McpHttpClient({ url, logger, requestTimeoutMs: o.requestTimeoutMs, eventStream: o.eventStream, authToken: this.env[AUTH_TOKEN_ENV] || undefined }));
    this.resolveBinary = deps.resolveBinary ?? defaultResolveBinary;
    this.env = deps.env ?? process.env;
    this.now = deps.now ?? Date.now;
    this.startupTimeoutMs = deps.startupTimeoutMs ?? 20000;
    this.stopTimeoutMs = deps.stopTimeoutMs ?? 5000;
    this.pollMs = deps.pollMs ?? 250;
    this.restartDelayMs = deps.restartDelayMs ?? 2000;

    this.config = resolveConfig(pluginConfig);
    this.cache = new RouteCache();
    /** @type {Client|undefined} */
    this.client = undefined;
    /** @type {import("node:child_process").ChildProcess|undefined} */
    this.child = undefined;
    /** @type {string|undefined} */
    this.binary = undefined;
    /** @type {ReturnType<typeof adapterPaths>|undefined} */
    this.paths = undefined;
    this.serviceStarted = false;
    this.stopping = false;
    this.subscribed = false;
    /** @type {string|undefined} why routing is off, for status and logs */
    this.lastError = undefined;
    /** @type {string[]} last lines of the child's output */
    this.outputTail = [];
    /** @type {number[]} */
    this.restarts = [];
    /** @type {NodeJS.Timeout|undefined} */
    this.timer = undefined;
    /** @type {NodeJS.Timeout|undefined} */
    this.debounce = undefined;
    /** @type {NodeJS.Timeout|undefined} */
    this.restartTimer = undefined;
    /** @type {Promise<void>|undefined} */
    this.refreshing = undefined;
    this.refreshQueued = false;
    this.lastWarmUp = 0;
    this.userKeyLogged = false;
    this.tokenWarned = false;
    /** @type {(() => void)|undefined} */
    this.exitHook = undefined;
  }

  // ---------------------------------------------------------------- service lifecycle

  /**
   * Service start: spawn bitrouter-mcp (autoStart), wait for its MCP endpoint, mint the token,
   * subscribe to the route table and start the refresh timer. Never throws for a missing binary or a
   * busy port: it logs what to do, and routing stays off so OpenClaw keeps its own providers.
   * @param {{ config?: any, stateDir?: string, logger?: Logger }} [ctx] OpenClawPluginServiceContext
   */
  async start(ctx = {}) {
    if (this.client || this.child) await this.stop(); // started twice without a stop: begin clean
    this.serviceStarted = true;
    this.stopping = false;
    if (ctx.logger) this.logger = ctx.logger;
    const committed = ctx.config?.plugins?.entries?.[PLUGIN_ID]?.config;
    if (committed !== undefined) this.config = resolveConfig(committed);
    const stateDir = ctx.stateDir ?? this.resolveStateDir();
    this.paths = adapterPaths(stateDir, this.config);
    const url = mcpUrl(this.config);

    this.client = this.createClient(url, { requestTimeoutMs: 10000, eventStream: true });
    this.client.onResourceUpdated(() => this.scheduleRefresh());

    if (this.config.autoStart) {
      const probe = await this.probe(this.client);
      if (probe === "other") {
        this.fail(
          `port ${this.config.mcpPort} is in use by a program that is not bitrouter-mcp (${this.lastError}). ` +
            `Stop it or set plugins.entries.${PLUGIN_ID}.config.mcpPort to a free port.`,
        );
        this.startTimer();
        return;
      }
      if (probe === "bitrouter") {
        await this.joinExisting(this.client, url);
      } else if (!this.launch()) {
        this.startTimer();
        return;
      }
    } else {
      this.logger.info(
        `[bitrouter] autoStart is off: using the bitrouter-mcp at ${url} ` +
          `(start it with \`bitrouter-mcp serve --http 127.0.0.1:${this.config.mcpPort} --config <file>\`).`,
      );
    }

    if (await this.waitReady()) {
      await this.refresh();
    } else if (!this.stopping) {
      this.logger.warn(
        `[bitrouter] bitrouter-mcp did not answer at ${url} within ${Math.round(this.startupTimeoutMs / 1000)} s; ` +
          `will keep trying every ${Math.round(refreshIntervalMs(this.config) / 1000)} s. Routing is off until then.`,
      );
      this.cache.markUnreachable("bitrouter-mcp is not answering yet");
    }
    this.startTimer();
  }

  /** @param {{ logger?: Logger }} [_ctx] */
  async stop(_ctx) {
    this.stopping = true;
    clearInterval(this.timer);
    clearTimeout(this.debounce);
    clearTimeout(this.restartTimer);
    this.timer = this.debounce = this.restartTimer = undefined;
    const client = this.client;
    this.client = undefined;
    this.subscribed = false;
    await client?.close().catch(() => {});
    await this.killChild();
    this.cache.markUnreachable("stopped");
    this.serviceStarted = false;
  }

  /**
   * What is on the MCP port before we spawn: "free", "bitrouter" (an MCP server answers) or "other".
   * @param {Client} client
   */
  async probe(client) {
    try {
      await client.connect();
      return "bitrouter";
    } catch (e) {
      if (isConnectionRefused(e)) return "free";
      this.lastError = msg(e);
      return "other";
    }
  }

  /**
   * A bitrouter-mcp not started by this gateway answers on the MCP port (e.g. the user's own
   * `make run`): join it. On this plugin's data dir it runs (or follows) the very daemon the plugin
   * would run; on another data dir it still serves, and the message names both ways out.
   * @param {Client} client
   * @param {string} url
   */
  async joinExisting(client, url) {
    /** @type {any} */
    let status;
    try {
      status = await client.callTool("bitrouter_status", {});
    } catch {
      status = undefined;
    }
    const theirs = typeof status?.paths?.data_dir === "string" ? path.resolve(status.paths.data_dir) : undefined;
    const ours = this.paths ? path.resolve(this.paths.dataDir) : undefined;
    const owner = status?.ownership?.owner;
    const ownedBy = owner?.pid ? ` (its daemon is run by bitrouter-mcp pid ${owner.pid}, ${owner.transport})` : "";
    if (theirs && ours && theirs === ours) {
      this.logger.info(`[bitrouter] joining the bitrouter-mcp already serving ${url} on ${ours}${ownedBy}; not starting another.`);
      return;
    }
    const cfg = `plugins.entries.${PLUGIN_ID}.config`;
    if (theirs && ours) {
      this.logger.warn(
        `[bitrouter] ${url} is served by a bitrouter-mcp on another data dir (${theirs}; this plugin's is ${ours}); using it. ` +
          `To share it on purpose set ${cfg}.dataDir to ${theirs}; to run this plugin's own server set ${cfg}.mcpPort to a free port.`,
      );
      return;
    }
    this.logger.warn(
      `[bitrouter] a bitrouter-mcp is already serving ${url} (not started by this gateway); using it. ` +
        `If it is left over from an earlier run, stop it so the plugin starts one with the current config.`,
    );
  }

  /** Spawns bitrouter-mcp. Returns false (after logging why) when it cannot. */
  launch() {
    const cfg = this.config;
    const paths = /** @type {NonNullable<typeof this.paths>} */ (this.paths);
    const bin = this.resolveBinary({ binaryPath: cfg.binaryPath, env: this.env });
    if (!bin.ok) {
      this.fail(bin.message);
      return false;
    }
    this.binary = bin.path;
    try {
      writeServerConfigFile(paths.configFile, cfg);
      fs.mkdirSync(paths.dataDir, { recursive: true, mode: 0o700 });
    } catch (e) {
      this.fail(`cannot write ${paths.configFile}: ${msg(e)}`);
      return false;
    }
    // --exit-with-parent: should OpenClaw die without stopping its services (SIGKILL, crash), the server
    // gets SIGTERM from the kernel and stops its daemon, so nothing is left holding the ports.
    const args = [
      "serve",
      "--http",
      `127.0.0.1:${cfg.mcpPort}`,
      "--config",
      paths.configFile,
      "--data-dir",
      paths.dataDir,
      "--exit-with-parent",
    ];
    this.logger.info(`[bitrouter] starting ${bin.path} ${args.join(" ")} (output: ${paths.logFile})`);

    /** @type {fs.WriteStream|undefined} */
    let log;
    try {
      log = fs.createWriteStream(paths.logFile, { flags: "a", mode: 0o600 });
      log.on("error", () => {});
      log.write(`--- ${new Date(this.now()).toISOString()} ${bin.path} ${args.join(" ")}\n`);
    } catch {
      log = undefined;
    }
    const child = this.spawn(bin.path, args, { stdio: ["ignore", "pipe", "pipe"], env: this.env });
    this.child = child;
    this.outputTail = [];
    /** @param {Buffer|string} chunk */
    const onOutput = (chunk) => {
      const text = chunk.toString();
      log?.write(text);
      for (const line of stripAnsi(text).split(/\r?\n/)) {
        if (!line.trim()) continue;
        this.outputTail.push(line);
        if (this.outputTail.length > 40) this.outputTail.shift();
      }
    };
    child.stdout?.on("data", onOutput);
    child.stderr?.on("data", onOutput);
    child.on("error", (e) => {
      this.fail(`cannot run ${bin.path}: ${msg(e)}`);
      if (child.pid === undefined && this.child === child) {
        // It never started, so no "exit" follows.
        this.child = undefined;
        if (this.exitHook) process.removeListener("exit", this.exitHook);
        this.exitHook = undefined;
      }
    });
    child.on("exit", (code, signal) => {
      log?.end();
      this.onChildExit(child, code, signal);
    });
    // If OpenClaw exits without stopping services, do not leave the server behind.
    this.exitHook = () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    };
    process.once("exit", this.exitHook);
    return true;
  }

  /**
   * @param {import("node:child_process").ChildProcess} child
   * @param {number|null} code
   * @param {string|null} signal
   */
  onChildExit(child, code, signal) {
    if (this.exitHook) process.removeListener("exit", this.exitHook);
    this.exitHook = undefined;
    if (child !== this.child) return;
    this.child = undefined;
    if (this.stopping) return;
    const tail = this.outputTail.slice(-10).join("\n  ");
    const portHint = /address already in use|EADDRINUSE|os error 98|os error 48/i.test(tail)
      ? ` A port is already in use: change plugins.entries.${PLUGIN_ID}.config.port (daemon, ${this.config.port}) or mcpPort (${this.config.mcpPort}).`
      : "";
    this.fail(
      `bitrouter-mcp exited (${signal ? `signal ${signal}` : `code ${code}`}).${portHint}` +
        (tail ? ` Last output:\n  ${tail}` : "") +
        (this.paths ? `\nFull output: ${this.paths.logFile}` : ""),
    );
    this.subscribed = false;
    const now = this.now();
    this.restarts = this.restarts.filter((t) => now - t < RESTART_WINDOW_MS);
    if (this.restarts.length >= MAX_RESTARTS) {
      this.logger.error(
        `[bitrouter] bitrouter-mcp exited ${MAX_RESTARTS + 1} times in ${RESTART_WINDOW_MS / 60000} minutes; not restarting. ` +
          `Fix the cause above, then restart the gateway.`,
      );
      return;
    }
    const delay = this.restartDelayMs * 2 ** this.restarts.length;
    this.restarts.push(now);
    this.logger.warn(`[bitrouter] restarting bitrouter-mcp in ${Math.round(delay / 1000)} s`);
    this.restartTimer = setTimeout(async () => {
      this.restartTimer = undefined;
      if (this.stopping || !this.launch()) return;
      if (await this.waitReady()) await this.refresh();
    }, delay);
    this.restartTimer.unref?.();
  }

  async killChild() {
    const child = this.child;
    if (!child) return;
    if (child.exitCode !== null || child.signalCode !== null) {
      this.child = undefined;
      return;
    }
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGTERM");
    /** @type {NodeJS.Timeout|undefined} */
    let timer;
    const timedOut = await Promise.race([
      exited.then(() => false),
      new Promise((resolve) => {
        timer = setTimeout(() => resolve(true), this.stopTimeoutMs);
      }),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      this.logger.warn(`[bitrouter] bitrouter-mcp did not stop within ${this.stopTimeoutMs} ms of SIGTERM; killing it`);
      child.kill("SIGKILL");
      await exited;
    }
    this.child = undefined;
  }

  /** Polls the MCP endpoint until it answers, the child exits, or the startup timeout passes. */
  async waitReady() {
    const client = this.client;
    if (!client) return false;
    const deadline = this.now() + this.startupTimeoutMs;
    const spawned = this.child;
    for (;;) {
      if (this.stopping) return false;
      try {
        await client.connect();
        return true;
      } catch (e) {
        this.lastError = msg(e);
      }
      if (spawned && this.child !== spawned) return false; // it exited; onChildExit logged why
      if (this.now() >= deadline) return false;
      await new Promise((r) => setTimeout(r, this.pollMs));
    }
  }

  /** @param {string} reason */
  fail(reason) {
    this.lastError = reason;
    this.cache.markUnreachable(reason);
    this.logger.error(`[bitrouter] ${reason}`);
  }

  startTimer() {
    if (this.timer || this.stopping) return;
    this.timer = setInterval(() => {
      this.refresh().catch(() => {});
    }, refreshIntervalMs(this.config));
    this.timer.unref?.();
  }

  /** Coalesces bursts of `notifications/resources/updated`. */
  scheduleRefresh() {
    if (this.debounce || this.stopping) return;
    this.debounce = setTimeout(() => {
      this.debounce = undefined;
      this.refresh().catch(() => {});
    }, 50);
    this.debounce.unref?.();
  }

  // ---------------------------------------------------------------- route table and token

  /**
   * Re-reads the route table (and health) into the cache; renews the token and the subscription when
   * needed. Concurrent calls share one run, plus one follow-up run.
   */
  refresh() {
    if (this.refreshing) {
      this.refreshQueued = true;
      return this.refreshing;
    }
    this.refreshing = (async () => {
      try {
        do {
          this.refreshQueued = false;
          await this.refreshOnce();
        } while (this.refreshQueued && !this.stopping);
      } finally {
        this.refreshing = undefined;
      }
    })();
    return this.refreshing;
  }

  async refreshOnce() {
    const client = this.client;
    if (!client) return;
    const wasReachable = this.cache.reachable;
    const wasHealthy = this.cache.healthy;
    const firstLoad = !this.cache.loaded;
    try {
      await client.connect();
      if (!this.subscribed) {
        try {
          await client.subscribe(ROUTES_URI);
          this.subscribed = true;
        } catch (e) {
          this.logger.debug?.(`[bitrouter] resources/subscribe failed (${msg(e)}); refreshing on the timer only`);
        }
      }
      await this.ensureToken(client);
      await this.loadRoutes(client);
      this.lastError = undefined;
    } catch (e) {
      this.cache.markUnreachable(msg(e));
      this.lastError = msg(e);
      if (wasReachable || firstLoad) {
        this.logger.warn(
          `[bitrouter] cannot reach bitrouter-mcp at ${mcpUrl(this.config)}: ${msg(e)}. ` +
            `Routing is off (OpenClaw uses its own providers) until it answers.`,
        );
      }
      return;
    }
    if (firstLoad || !wasReachable || wasHealthy !== this.cache.healthy) {
      const names = this.cache.names();
      this.logger.info(
        `[bitrouter] daemon ${this.cache.healthy ? "healthy" : "UNHEALTHY (routing paused)"}; ` +
          `${names.length} virtual model(s)${names.length ? `: ${names.join(", ")}` : ""}; ` +
          `${this.config.interceptAllModels ? "intercepting all models" : "selective mode"}`,
      );
    }
  }

  /** @param {Client} client */
  async loadRoutes(client) {
    const doc = await client.readResourceJson(ROUTES_URI);
    /** @type {boolean|undefined} */
    let statusHealthy;
    if (!RouteCache.hasHealthFlag(doc)) {
      const status = await client.callTool("bitrouter_status", {});
      statusHealthy = status?.daemon?.healthy === true;
    }
    this.cache.update(doc, { statusHealthy, now: this.now() });
  }

  /**
   * Makes sure BITROUTER_API_KEY holds a valid BitRouter JWT for OpenClaw's requests: mints one with
   * bitrouter_keygen unless the user set the variable, and renews it a week before it expires.
   * Failures are logged, not thrown: routes still load.
   * @param {Client} client
   * @param {{ save?: boolean }} [opts] save: keep the token as the account's saved token "openclaw"
   */
  async ensureToken(client, { save = true } = {}) {
    const current = this.env[API_KEY_ENV];
    if (current && !MINTED.has(current)) {
      if (!this.userKeyLogged) {
        this.logger.info(`[bitrouter] ${API_KEY_ENV} is set in the environment; using it instead of minting a token.`);
        this.userKeyLogged = true;
      }
      return;
    }
    if (current && /** @type {number} */ (MINTED.get(current)) - this.now() > TOKEN_RENEW_BEFORE_MS) return;
    try {
      const res = await this.mintToken(client, save);
      const token = res?.token;
      if (typeof token !== "string" || token.split(".").length !== 3) {
        throw new Error("bitrouter_keygen returned no token");
      }
      const exp = typeof res?.claims?.exp === "number" ? res.claims.exp * 1000 : this.now() + THIRTY_DAYS_MS;
      MINTED.set(token, exp);
      this.env[API_KEY_ENV] = token;
      this.tokenWarned = false;
      this.logger.info(
        `[bitrouter] minted a BitRouter API token for OpenClaw (scope api` +
          (Array.isArray(res?.claims?.models) ? `, models ${res.claims.models.join(" ")}` : "") +
          `, expires ${new Date(exp).toISOString()})` +
          (res?.saved_to ? `; saved to ${res.saved_to}` : ""),
      );
    } catch (e) {
      if (!this.tokenWarned) {
        this.logger.warn(
          `[bitrouter] could not mint a BitRouter API token (${msg(e)}); requests to the bitrouter provider will be ` +
            `refused until one exists. Set ${API_KEY_ENV} yourself to work around this.`,
        );
        this.tokenWarned = true;
      }
    }
  }

  /**
   * One bitrouter_keygen, resolving the two refusals a normal install meets:
   * - "no active account" (fresh data directory): creates BitRouter's first signing account, only when
   *   there is none at all, then mints;
   * - "already exists" (the token saved by an earlier start): removes that saved file and saves the new
   *   one under the same name; if the name is still taken (another process raced us), mints unsaved.
   * @param {Client} client
   * @param {boolean} save
   */
  async mintToken(client, save) {
    /** @type {Record<string, unknown>} */
    let args = { ...KEYGEN_ARGS };
    if (!save) delete args.name;
    const models = tokenModels(this.config);
    if (models) args.models = models;
    let accountTried = false;
    let removeTried = false;
    for (;;) {
      try {
        return await client.callTool("bitrouter_keygen", args, { timeoutMs: 20000 });
      } catch (e) {
        const m = msg(e);
        if (NO_ACCOUNT_RE.test(m) && !accountTried) {
          accountTried = true;
          await this.ensureAccount(client);
          continue;
        }
        if (NAME_TAKEN_RE.test(m) && args.name) {
          if (!removeTried) {
            removeTried = true;
            await client.callTool("bitrouter_keys", { action: "remove", name: args.name }).catch(() => {});
          } else {
            const { name: _name, ...rest } = args;
            args = rest;
          }
          continue;
        }
        throw e;
      }
    }
  }

  /**
   * Creates BitRouter's signing account when it has none (a fresh data directory). Never touches
   * existing accounts: when some exist but none is active, says how to pick one.
   * @param {Client} client
   */
  async ensureAccount(client) {
    const list = await client.callTool("bitrouter_account", { action: "list" });
    const accounts = Array.isArray(list?.accounts) ? list.accounts : [];
    if (accounts.length > 0) {
      throw new Error(
        `BitRouter has ${accounts.length} account(s) but none is active; choose one with the MCP tool ` +
          `bitrouter_account {"action":"set_active","account":0}`,
      );
    }
    const res = await client.callTool("bitrouter_account", { action: "generate" });
    const prefix = typeof res?.changed?.prefix === "string" ? `${res.changed.prefix} ` : "";
    this.logger.info(`[bitrouter] created BitRouter's signing account ${prefix}(there was none); it signs OpenClaw's token`);
  }

  /**
   * For processes without the service (e.g. `openclaw agent --local`): at most once per refresh period,
   * read the routes (and mint the token) from a bitrouter-mcp that is already running. Bounded to about
   * a second when nothing answers; leaves no connection open.
   */
  async warmUp() {
    if (this.serviceStarted) return;
    const now = this.now();
    if (this.lastWarmUp && now - this.lastWarmUp < refreshIntervalMs(this.config)) return;
    this.lastWarmUp = now;
    const client = this.createClient(mcpUrl(this.config), { requestTimeoutMs: 1500, eventStream: false });
    try {
      await client.connect();
      await this.ensureToken(client, { save: false });
      await this.loadRoutes(client);
    } catch (e) {
      this.cache.markUnreachable(msg(e));
      this.logger.debug?.(`[bitrouter] no bitrouter-mcp at ${mcpUrl(this.config)} (${msg(e)}); routing is off in this process`);
    } finally {
      await client.close().catch(() => {});
    }
  }

  // ---------------------------------------------------------------- gateway methods

  /**
   * Runs fn with the service's client, or a short-lived one when the service is not running here.
   * @template T
   * @param {(c: Client) => Promise<T>} fn
   */
  async withClient(fn) {
    if (this.client) {
      await this.client.connect();
      return fn(this.client);
    }
    const client = this.createClient(mcpUrl(this.config), { requestTimeoutMs: 5000, eventStream: false });
    try {
      await client.connect();
      return await fn(client);
    } finally {
      await client.close().catch(() => {});
    }
  }

  /** What the adapter itself knows, added to status answers. */
  describe() {
    return {
      mcpUrl: mcpUrl(this.config),
      managed: Boolean(this.child),
      pid: this.child?.pid,
      binary: this.binary,
      routingActive: this.cache.loaded && this.cache.healthy,
      interceptAllModels: this.config.interceptAllModels,
      virtualModels: this.cache.names(),
      routesUpdatedAt: this.cache.updatedAt,
      routesFetchedAt: this.cache.fetchedAt ? new Date(this.cache.fetchedAt).toISOString() : undefined,
      logFile: this.paths?.logFile,
      lastError: this.lastError,
    };
  }

  /** bitrouter_status from the server plus the adapter's view. */
  async status() {
    const server = await this.withClient((c) => c.callTool("bitrouter_status", {}));
    return { ...(server && typeof server === "object" ? server : { server }), openclaw: this.describe() };
  }

  /** The `bitrouter://routes` document. */
  async routes() {
    return this.withClient((c) => c.readResourceJson(ROUTES_URI));
  }
}

/** Exposed for tests: forget tokens minted in this process. */
export function _resetMintedTokens() {
  MINTED.clear();
}
