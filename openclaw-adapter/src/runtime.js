// @ts-check
/**
 * The adapter's live state inside one OpenClaw process, and the order things happen in: the gateway
 * service's start (probe the MCP port, join a running bitrouter-mcp or spawn one, wait until it answers,
 * first refresh) and stop, restarts after a crash, and the gateway methods' answers.
 *
 * The parts live beside it: the child process in child.js, the OpenClaw token in token.js, the route
 * refresh loop (timer, subscription, `agent --local` warm-up) in refresh.js, MCP in mcp-client.js.
 * `register()` only builds this; the gateway service calls `start`/`stop`; the hook reads `cache`;
 * gateway methods call `status`/`routes`.
 */

import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

import { resolveBinary as defaultResolveBinary } from "./binary.js";
import { ServerProcess, RestartBudget, MAX_RESTARTS, RESTART_WINDOW_MS } from "./child.js";
import { PLUGIN_ID, ROUTES_URI, adapterPaths, mcpUrl, refreshIntervalMs, resolveConfig } from "./config.js";
import { AUTH_TOKEN_ENV, McpHttpClient, isConnectionRefused } from "./mcp-client.js";
import { RouteRefresher } from "./refresh.js";
import { RouteCache } from "./routing.js";
import { TokenKeeper } from "./token.js";

export { KEYGEN_ARGS, _resetMintedTokens, tokenModels } from "./token.js";

/** @param {unknown} e */
function msg(e) {
  return e instanceof Error ? e.message : String(e);
}

/**
 * @typedef {{ info: (m: string) => void, warn: (m: string) => void, error: (m: string) => void, debug?: (m: string) => void }} Logger
 * @typedef {import("./refresh.js").Client} Client
 */

export class BitrouterRuntime {
  /**
   * @param {object} opts
   * @param {Logger} opts.logger
   * @param {unknown} [opts.pluginConfig]             api.pluginConfig at register time
   * @param {() => string} opts.resolveStateDir       OpenClaw's state directory
   * @param {object} [opts.deps]                      injectable for tests
   * @param {import("./child.js").ServerProcess["spawn"]} [opts.deps.spawn]
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
    this.env = deps.env ?? process.env;
    this.createClient =
      deps.createClient ??
      ((url, o) =>
        new McpHttpClient({ url, logger: this.logger, requestTimeoutMs: o.requestTimeoutMs, eventStream: o.eventStream, authToken: this.env[AUTH_TOKEN_ENV] || undefined }));
    this.resolveBinary = deps.resolveBinary ?? defaultResolveBinary;
    this.now = deps.now ?? Date.now;
    this.startupTimeoutMs = deps.startupTimeoutMs ?? 20000;
    this.pollMs = deps.pollMs ?? 250;

    this.config = resolveConfig(pluginConfig);
    this.cache = new RouteCache();
    /** @type {Client|undefined} */
    this.client = undefined;
    /** @type {string|undefined} */
    this.binary = undefined;
    /** @type {ReturnType<typeof adapterPaths>|undefined} */
    this.paths = undefined;
    this.serviceStarted = false;
    this.stopping = false;
    /** @type {string|undefined} why routing is off, for status and logs */
    this.lastError = undefined;
    /** @type {NodeJS.Timeout|undefined} */
    this.restartTimer = undefined;
    this.restarts = new RestartBudget(deps.restartDelayMs ?? 2000);

    this.server = new ServerProcess({
      spawn: deps.spawn,
      env: this.env,
      now: this.now,
      logger: () => this.logger,
      stopTimeoutMs: deps.stopTimeoutMs ?? 5000,
      onError: (reason) => this.fail(reason),
      onExit: (_child, code, signal) => this.onChildExit(code, signal),
    });
    this.tokens = new TokenKeeper({ env: this.env, now: this.now, logger: () => this.logger, config: () => this.config });
    this.refresher = new RouteRefresher({
      cache: this.cache,
      tokens: this.tokens,
      client: () => this.client,
      createClient: (url, o) => this.createClient(url, o),
      config: () => this.config,
      logger: () => this.logger,
      now: this.now,
      stopping: () => this.stopping,
      onResult: (error) => {
        this.lastError = error;
      },
    });
  }

  /** The running bitrouter-mcp child, if this gateway started one. */
  get child() {
    return this.server.child;
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
    this.client.onResourceUpdated(() => this.refresher.schedule());

    if (this.config.autoStart) {
      const probe = await this.probe(this.client);
      if (probe === "other") {
        this.fail(
          `port ${this.config.mcpPort} is in use by a program that is not bitrouter-mcp (${this.lastError}). ` +
            `Stop it or set plugins.entries.${PLUGIN_ID}.config.mcpPort to a free port.`,
        );
        this.refresher.startTimer();
        return;
      }
      if (probe === "bitrouter") {
        await this.joinExisting(this.client, url);
      } else if (!this.launch()) {
        this.refresher.startTimer();
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
    this.refresher.startTimer();
  }

  /** @param {{ logger?: Logger }} [_ctx] */
  async stop(_ctx) {
    this.stopping = true;
    this.refresher.stop();
    clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    const client = this.client;
    this.client = undefined;
    await client?.close().catch(() => {});
    await this.server.stop();
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

  /** Finds the binary and spawns bitrouter-mcp. Returns false (after logging why) when it cannot. */
  launch() {
    const bin = this.resolveBinary({ binaryPath: this.config.binaryPath, env: this.env });
    if (!bin.ok) {
      this.fail(bin.message);
      return false;
    }
    this.binary = bin.path;
    const paths = /** @type {NonNullable<typeof this.paths>} */ (this.paths);
    const res = this.server.launch({ binary: bin.path, mcpPort: this.config.mcpPort, paths, config: this.config });
    if (!res.ok) this.fail(res.reason);
    return res.ok;
  }

  /**
   * The child exited on its own: say why, and restart it within the restart budget.
   * @param {number|null} code
   * @param {string|null} signal
   */
  onChildExit(code, signal) {
    if (this.stopping) return;
    this.fail(this.server.exitMessage(code, signal, { port: this.config.port, mcpPort: this.config.mcpPort, logFile: this.paths?.logFile }));
    this.refresher.subscribed = false;
    const delay = this.restarts.next(this.now());
    if (delay === undefined) {
      this.logger.error(
        `[bitrouter] bitrouter-mcp exited ${MAX_RESTARTS + 1} times in ${RESTART_WINDOW_MS / 60000} minutes; not restarting. ` +
          `Fix the cause above, then restart the gateway.`,
      );
      return;
    }
    this.logger.warn(`[bitrouter] restarting bitrouter-mcp in ${Math.round(delay / 1000)} s`);
    this.restartTimer = setTimeout(async () => {
      this.restartTimer = undefined;
      if (this.stopping || !this.launch()) return;
      if (await this.waitReady()) await this.refresh();
    }, delay);
    this.restartTimer.unref?.();
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
      await sleep(this.pollMs);
    }
  }

  /** @param {string} reason */
  fail(reason) {
    this.lastError = reason;
    this.cache.markUnreachable(reason);
    this.logger.error(`[bitrouter] ${reason}`);
  }

  /** Refreshes the route cache now (see RouteRefresher.refresh). */
  refresh() {
    return this.refresher.refresh();
  }

  /** For processes without the service (see RouteRefresher.warmUp). */
  async warmUp() {
    if (this.serviceStarted) return;
    await this.refresher.warmUp();
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
