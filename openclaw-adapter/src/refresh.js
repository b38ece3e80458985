// @ts-check
/**
 * The route cache kept current: the timer (every `healthCheckIntervalMs`, at least a second), the
 * `bitrouter://routes` subscription whose notifications trigger a (debounced) refresh, and one refresh
 * = subscribe if needed, mint/renew the token, read the routes (and health) into the cache. Processes
 * without the service (`openclaw agent --local`) use `warmUp`: one read per refresh period from a
 * bitrouter-mcp that is already running, leaving no socket or timer behind.
 */

import { ROUTES_URI, mcpUrl, refreshIntervalMs } from "./config.js";
import { RouteCache } from "./routing.js";

/** Notifications arriving within this window cause one refresh. */
const DEBOUNCE_MS = 50;

/** @param {unknown} e */
const msg = (e) => (e instanceof Error ? e.message : String(e));

/**
 * @typedef {{ info: (m: string) => void, warn: (m: string) => void, error: (m: string) => void, debug?: (m: string) => void }} Logger
 * @typedef {{ connect: () => Promise<void>, callTool: Function, readResourceJson: Function, subscribe: Function,
 *             onResourceUpdated: Function, isConnected: () => boolean, close: () => Promise<void>, serverInfo?: any }} Client
 */

export class RouteRefresher {
  /**
   * @param {object} o
   * @param {RouteCache} o.cache
   * @param {import("./token.js").TokenKeeper} o.tokens
   * @param {() => Client|undefined} o.client           the service's client (none when not started)
   * @param {(url: string, o: {requestTimeoutMs?: number, eventStream?: boolean}) => Client} o.createClient
   * @param {() => import("./config.js").AdapterConfig} o.config
   * @param {() => Logger} o.logger
   * @param {() => number} o.now
   * @param {() => boolean} o.stopping
   * @param {(error: string|undefined) => void} o.onResult  why the last refresh failed, or undefined
   */
  constructor({ cache, tokens, client, createClient, config, logger, now, stopping, onResult }) {
    this.cache = cache;
    this.tokens = tokens;
    this.client = client;
    this.createClient = createClient;
    this.config = config;
    this.logger = logger;
    this.now = now;
    this.stopping = stopping;
    this.onResult = onResult;
    this.subscribed = false;
    /** @type {NodeJS.Timeout|undefined} */
    this.timer = undefined;
    /** @type {NodeJS.Timeout|undefined} */
    this.debounce = undefined;
    /** @type {Promise<void>|undefined} */
    this.refreshing = undefined;
    this.queued = false;
    this.lastWarmUp = 0;
  }

  /** Starts the periodic refresh (once). */
  startTimer() {
    if (this.timer || this.stopping()) return;
    this.timer = setInterval(() => {
      this.refresh().catch(() => {});
    }, refreshIntervalMs(this.config()));
    this.timer.unref?.();
  }

  /** Stops the timer and any pending debounced refresh; the next client must subscribe again. */
  stop() {
    clearInterval(this.timer);
    clearTimeout(this.debounce);
    this.timer = this.debounce = undefined;
    this.subscribed = false;
  }

  /** Coalesces bursts of `notifications/resources/updated`. */
  schedule() {
    if (this.debounce || this.stopping()) return;
    this.debounce = setTimeout(() => {
      this.debounce = undefined;
      this.refresh().catch(() => {});
    }, DEBOUNCE_MS);
    this.debounce.unref?.();
  }

  /**
   * Re-reads the route table (and health) into the cache; renews the token and the subscription when
   * needed. Concurrent calls share one run, plus one follow-up run.
   */
  refresh() {
    if (this.refreshing) {
      this.queued = true;
      return this.refreshing;
    }
    this.refreshing = (async () => {
      try {
        do {
          this.queued = false;
          await this.refreshOnce();
        } while (this.queued && !this.stopping());
      } finally {
        this.refreshing = undefined;
      }
    })();
    return this.refreshing;
  }

  async refreshOnce() {
    const client = this.client();
    if (!client) return;
    const cfg = this.config();
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
          this.logger().debug?.(`[bitrouter] resources/subscribe failed (${msg(e)}); refreshing on the timer only`);
        }
      }
      await this.tokens.ensure(client);
      await this.loadRoutes(client);
      this.onResult(undefined);
    } catch (e) {
      this.cache.markUnreachable(msg(e));
      this.onResult(msg(e));
      if (wasReachable || firstLoad) {
        this.logger().warn(
          `[bitrouter] cannot reach bitrouter-mcp at ${mcpUrl(cfg)}: ${msg(e)}. ` +
            `Routing is off (OpenClaw uses its own providers) until it answers.`,
        );
      }
      return;
    }
    if (firstLoad || !wasReachable || wasHealthy !== this.cache.healthy) {
      const names = this.cache.names();
      this.logger().info(
        `[bitrouter] daemon ${this.cache.healthy ? "healthy" : "UNHEALTHY (routing paused)"}; ` +
          `${names.length} virtual model(s)${names.length ? `: ${names.join(", ")}` : ""}; ` +
          `${cfg.interceptAllModels ? "intercepting all models" : "selective mode"}`,
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
   * For processes without the service (e.g. `openclaw agent --local`): at most once per refresh period,
   * read the routes (and mint the token) from a bitrouter-mcp that is already running. Bounded to about
   * a second when nothing answers; leaves no connection open.
   */
  async warmUp() {
    const cfg = this.config();
    const now = this.now();
    if (this.lastWarmUp && now - this.lastWarmUp < refreshIntervalMs(cfg)) return;
    this.lastWarmUp = now;
    const client = this.createClient(mcpUrl(cfg), { requestTimeoutMs: 1500, eventStream: false });
    try {
      await client.connect();
      await this.tokens.ensure(client, { save: false });
      await this.loadRoutes(client);
    } catch (e) {
      this.cache.markUnreachable(msg(e));
      this.logger().debug?.(`[bitrouter] no bitrouter-mcp at ${mcpUrl(cfg)} (${msg(e)}); routing is off in this process`);
    } finally {
      await client.close().catch(() => {});
    }
  }
}
