// @ts-check
/**
 * The adapter's MCP client for bitrouter-mcp's streamable HTTP endpoint: the official SDK's `Client` over
 * its `StreamableHTTPClientTransport` (framing, SSE, sessions, pings, timeouts), plus the glue the SDK
 * leaves to its users:
 *
 * - results as values: a tool's structuredContent (or the JSON of its text), a resource's JSON;
 * - a failed tool call thrown as a {@link ToolError} carrying the server's machine-readable
 *   `_meta["bitrouter/error"].code`, so callers branch on codes, not on message text;
 * - a bearer token when the server was started with one (`BITROUTER_MCP_AUTH_TOKEN`);
 * - sessions that outlive the server: a forgotten session (HTTP 404, e.g. a restarted server) gets a new
 *   one, re-subscribed, and the resource listeners hear "" (updates may have been missed); the
 *   notification stream is reopened with backoff while subscriptions exist.
 *
 * It is the only code in the adapter that speaks MCP. It knows nothing about routes or OpenClaw; the
 * rest of the adapter uses the `McpClient` interface below, which tests replace with a fake.
 *
 * @typedef {object} McpClient
 * @property {() => Promise<void>} connect                       initialize a session (idempotent)
 * @property {(name: string, args?: object, opts?: {timeoutMs?: number}) => Promise<any>} callTool
 *           structuredContent of the result (or the JSON in its text); throws a ToolError on isError
 * @property {(uri: string, opts?: {timeoutMs?: number}) => Promise<any>} readResourceJson
 *           parsed JSON of the resource's first text content
 * @property {(uri: string) => Promise<void>} subscribe          resources/subscribe, renewed on every new session
 * @property {(fn: (uri: string) => void) => () => void} onResourceUpdated
 *           also called with "" after a reconnect, when updates may have been missed
 * @property {() => boolean} isConnected
 * @property {() => Promise<void>} close
 */

import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";

/**
 * @typedef {import("@modelcontextprotocol/sdk/client/index.js").Client} Client
 * @typedef {import("@modelcontextprotocol/sdk/client/streamableHttp.js").StreamableHTTPClientTransport} Transport
 * @typedef {{
 *   Client: typeof import("@modelcontextprotocol/sdk/client/index.js").Client,
 *   StreamableHTTPClientTransport: typeof import("@modelcontextprotocol/sdk/client/streamableHttp.js").StreamableHTTPClientTransport,
 *   StreamableHTTPError: typeof import("@modelcontextprotocol/sdk/client/streamableHttp.js").StreamableHTTPError,
 *   McpError: typeof import("@modelcontextprotocol/sdk/types.js").McpError,
 *   ResourceUpdatedNotificationSchema: typeof import("@modelcontextprotocol/sdk/types.js").ResourceUpdatedNotificationSchema,
 * }} Sdk
 */

/** @type {Sdk|undefined} set once loaded; errors are only ever checked after a connect loaded it */
let SDK;
/** @type {Promise<Sdk>|undefined} */
let sdkLoading;

/**
 * The SDK, loaded on first use: loading it takes a few hundred ms, which OpenClaw processes that load the
 * plugin but never talk MCP (most CLI commands) should not pay.
 * @returns {Promise<Sdk>}
 */
export function loadSdk() {
  sdkLoading ??= Promise.all([
    import("@modelcontextprotocol/sdk/client/index.js"),
    import("@modelcontextprotocol/sdk/client/streamableHttp.js"),
    import("@modelcontextprotocol/sdk/types.js"),
  ]).then(([client, http, types]) => {
    SDK = {
      Client: client.Client,
      StreamableHTTPClientTransport: http.StreamableHTTPClientTransport,
      StreamableHTTPError: http.StreamableHTTPError,
      McpError: types.McpError,
      ResourceUpdatedNotificationSchema: types.ResourceUpdatedNotificationSchema,
    };
    return SDK;
  }, (e) => {
    throw sdkLoadError(e);
  });
  return sdkLoading;
}

/**
 * Says what to do when the SDK is missing: a linked checkout (`openclaw plugins install -l`) is loaded
 * as it is, without the npm install a managed install runs. Other load errors pass through.
 * @param {unknown} e
 */
export function sdkLoadError(e) {
  const code = /** @type {{ code?: unknown }} */ (e)?.code;
  const text = e instanceof Error ? e.message : String(e);
  if (code !== "ERR_MODULE_NOT_FOUND" || !text.includes("@modelcontextprotocol/sdk")) return e;
  const dir = fileURLToPath(new URL("..", import.meta.url));
  return new Error(
    `the plugin's dependency @modelcontextprotocol/sdk is not installed: run \`npm install --no-save\` in ${dir}` +
      ` (a linked checkout is loaded without one), then restart the gateway`,
    { cause: e },
  );
}

/**
 * A JSON-RPC error answer (a timeout included): the session is still usable.
 * @param {unknown} e
 */
export function isProtocolError(e) {
  return SDK !== undefined && e instanceof SDK.McpError;
}

/** The server's bearer token, when it was started with one (`serve --auth-token` reads the same variable). */
export const AUTH_TOKEN_ENV = "BITROUTER_MCP_AUTH_TOKEN";
/** `_meta` key of the server's machine-readable tool error. */
export const ERROR_META_KEY = "bitrouter/error";

/** A tool call that returned `isError: true`. */
export class ToolError extends Error {
  /**
   * @param {string} tool
   * @param {any} result the CallToolResult
   */
  constructor(tool, result) {
    const text = Array.isArray(result?.content)
      ? result.content.filter((/** @type {any} */ c) => c?.type === "text").map((/** @type {any} */ c) => c.text).join("\n")
      : "";
    super(`tool ${tool} failed: ${text || "(no message)"}`);
    this.name = "ToolError";
    this.tool = tool;
    const meta = result?._meta?.[ERROR_META_KEY];
    /** @type {string|undefined} the server's error code, e.g. "no_active_account", "already_exists" */
    this.code = typeof meta?.code === "string" ? meta.code : undefined;
    /** @type {string|undefined} the argument the error is about, when the server names one */
    this.field = typeof meta?.field === "string" ? meta.field : undefined;
    this.result = result;
  }
}

/**
 * True when the error means nothing listens on the port (connection refused).
 * @param {unknown} err
 */
export function isConnectionRefused(err) {
  /** @type {any} */
  let e = err;
  for (let i = 0; e && i < 5; i++) {
    if (e.code === "ECONNREFUSED") return true;
    if (Array.isArray(e.errors) && e.errors.some(isConnectionRefused)) return true;
    e = e.cause;
  }
  return false;
}

/** @param {unknown} e */
const message = (e) => (e instanceof Error ? e.message : String(e));

/**
 * Streamable HTTP MCP client.
 * @implements {McpClient}
 */
export class McpHttpClient {
  /**
   * @param {object} opts
   * @param {string} opts.url                      e.g. http://127.0.0.1:8788/mcp
   * @param {{name: string, version: string}} [opts.clientInfo]
   * @param {typeof fetch} [opts.fetch]
   * @param {number} [opts.requestTimeoutMs]       default per-request timeout
   * @param {string} [opts.authToken]              bearer token for a server started with --auth-token
   * @param {{debug?: (m: string) => void, warn: (m: string) => void}} [opts.logger]
   * @param {boolean} [opts.eventStream]           keep the GET notification stream (default true); short-lived
   *                                               clients turn it off so the server holds no stream for them
   */
  constructor({ url, clientInfo = { name: "bitrouter-openclaw", version: "0.1.0" }, fetch: f, requestTimeoutMs = 10000, authToken, logger, eventStream = true }) {
    this.url = url;
    this.clientInfo = clientInfo;
    this.baseFetch = f ?? globalThis.fetch.bind(globalThis);
    this.requestTimeoutMs = requestTimeoutMs;
    this.authToken = authToken;
    this.logger = logger;
    this.useEventStream = eventStream;
    /** @type {Client|undefined} */
    this.client = undefined;
    /** @type {Transport|undefined} */
    this.transport = undefined;
    /** @type {Promise<void>|undefined} */
    this.connecting = undefined;
    this.connected = false;
    this.closed = false;
    /** Counts sessions, so the end of an old session's stream does not disturb the current one. */
    this.generation = 0;
    /** @type {Set<(uri: string) => void>} */
    this.updateListeners = new Set();
    /** @type {Set<string>} */
    this.subscriptions = new Set();
    this.recovering = false;
    /** @type {"pending"|"open"|"unsupported"|"lost"|undefined} the GET notification stream of this session */
    this.stream = undefined;
    this.closing = new AbortController();
  }

  /** @returns {{name: string, version: string}|undefined} */
  get serverInfo() {
    return this.client?.getServerVersion();
  }

  /** @returns {string|undefined} */
  get sessionId() {
    return this.transport?.sessionId;
  }

  /** @returns {string|undefined} */
  get protocolVersion() {
    return this.transport?.protocolVersion;
  }

  isConnected() {
    return this.connected;
  }

  /** @param {string} m */
  debug(m) {
    this.logger?.debug?.(`[bitrouter] mcp: ${m}`);
  }

  async connect() {
    if (this.closed) throw new Error("MCP client closed");
    if (this.connected) return;
    this.connecting ??= this.open().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  /** A new SDK client and session; renews the subscriptions of the previous one. */
  async open() {
    const { Client, StreamableHTTPClientTransport, ResourceUpdatedNotificationSchema } = await loadSdk();
    await this.drop();
    const generation = ++this.generation;
    const transport = new StreamableHTTPClientTransport(new URL(this.url), {
      fetch: (url, init) => this.fetchFor(generation, url, init),
      requestInit: this.authToken ? { headers: { authorization: `Bearer ${this.authToken}` } } : undefined,
      // The SDK would retry the stream on the same session; after a restart only a new session helps,
      // so the stream's loss is handled here (streamLost).
      reconnectionOptions: { initialReconnectionDelay: 500, maxReconnectionDelay: 30000, reconnectionDelayGrowFactor: 2, maxRetries: 0 },
    });
    const client = new Client(this.clientInfo, { capabilities: {} });
    client.onerror = (e) => this.debug(message(e));
    client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => this.emitUpdated(n.params.uri));
    this.client = client;
    this.transport = transport;
    try {
      await client.connect(transport, { timeout: this.requestTimeoutMs });
    } catch (e) {
      await this.drop();
      throw e;
    }
    this.connected = true;
    this.debug(`session ${transport.sessionId ?? "(none)"} protocol ${transport.protocolVersion}`);
    // A new session has no subscriptions: renew them, then tell listeners updates may have been missed.
    if (this.subscriptions.size > 0) {
      for (const uri of this.subscriptions) {
        await client.subscribeResource({ uri }, { timeout: this.requestTimeoutMs }).catch((e) => this.logger?.warn(`[bitrouter] re-subscribe ${uri} failed: ${message(e)}`));
      }
      this.emitUpdated("");
    }
  }

  /**
   * Forgets the current session (closing its transport aborts its requests and stream); with
   * `expected`, only if that transport is still the current one (another caller may have renewed it).
   * @param {Transport} [expected]
   */
  async drop(expected) {
    if (expected && expected !== this.transport) return;
    this.generation++; // the old stream's end is no news
    this.stream = undefined;
    const client = this.client;
    this.client = undefined;
    this.transport = undefined;
    this.connected = false;
    await client?.close().catch(() => {});
  }

  /**
   * The transport's fetch: watches the GET notification stream, so its end can be noticed, and
   * answers GET itself with 405 (no stream offered) when this client wants none.
   * @param {number} generation
   * @param {string|URL} url
   * @param {RequestInit} [init]
   * @returns {Promise<Response>}
   */
  async fetchFor(generation, url, init) {
    if (init?.method !== "GET") return this.baseFetch(url, init);
    if (!this.useEventStream) return new Response(null, { status: 405 });
    if (generation === this.generation) this.stream = "pending";
    /** @type {Response} */
    let res;
    try {
      res = await this.baseFetch(url, init);
    } catch (e) {
      this.streamLost(generation, e);
      throw e;
    }
    if (!res.ok || !res.body) {
      if (res.status !== 405) this.streamLost(generation, new Error(`GET event stream: HTTP ${res.status}`));
      else if (generation === this.generation) this.stream = "unsupported";
      return res;
    }
    if (generation === this.generation) this.stream = "open";
    const reader = res.body.getReader();
    const body = new ReadableStream({
      pull: async (ctrl) => {
        try {
          const { done, value } = await reader.read();
          if (done) {
            ctrl.close();
            this.streamLost(generation, new Error("event stream ended"));
          } else {
            ctrl.enqueue(value);
          }
        } catch (e) {
          ctrl.error(e);
          this.streamLost(generation, e);
        }
      },
      cancel: (reason) => reader.cancel(reason),
    });
    return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
  }

  /**
   * The notification stream of session `generation` is gone. While subscribed, reopen it: on the same
   * session when the server still knows it, else on a new one; with backoff while nothing answers.
   * @param {number} generation
   * @param {unknown} why
   */
  streamLost(generation, why) {
    if (generation !== this.generation) return;
    this.stream = "lost";
    if (this.closed || this.subscriptions.size === 0 || this.recovering) return;
    this.debug(`event stream interrupted: ${message(why)}`);
    this.recovering = true;
    (async () => {
      let delay = 250;
      /** @type {Transport|undefined} */
      let transport;
      try {
        while (!this.closed && this.subscriptions.size > 0) {
          await sleep(delay, undefined, { signal: this.closing.signal, ref: false });
          delay = Math.min(delay * 2, 30000);
          try {
            transport = this.transport;
            if (this.connected && transport) {
              await transport.resumeStream(/** @type {any} */ (undefined));
              this.emitUpdated(""); // updates may have been missed while the stream was down
            } else {
              await this.connect(); // re-subscribes and tells the listeners
            }
            return;
          } catch (e) {
            this.debug(`event stream: ${message(e)}`);
            // The server forgot the session, or is not there: the next try starts a new session.
            if (transport && !isProtocolError(e)) await this.drop(transport);
          }
        }
      } catch {
        // closed while waiting
      } finally {
        this.recovering = false;
      }
    })();
  }

  /**
   * One request on the current session; re-initializes once when the server no longer knows it.
   * @template T
   * @param {string} what
   * @param {(c: Client) => Promise<T>} fn
   * @returns {Promise<T>}
   */
  async request(what, fn) {
    await this.connect();
    const transport = this.transport;
    try {
      return await fn(/** @type {Client} */ (this.client));
    } catch (e) {
      if (isSessionGone(e)) {
        this.debug(`session expired on ${what}; re-initializing`);
        await this.drop(transport);
        await this.connect();
        return fn(/** @type {Client} */ (this.client));
      }
      // A JSON-RPC error (a timeout included) leaves the session usable; anything else (unreachable,
      // HTTP error) makes the next call start a new session.
      if (!isProtocolError(e)) await this.drop(transport);
      throw e;
    }
  }

  /** @param {string} uri */
  emitUpdated(uri) {
    for (const fn of this.updateListeners) {
      try {
        fn(uri);
      } catch (e) {
        this.logger?.warn(`[bitrouter] resource update listener failed: ${message(e)}`);
      }
    }
  }

  /** @param {(uri: string) => void} fn */
  onResourceUpdated(fn) {
    this.updateListeners.add(fn);
    return () => this.updateListeners.delete(fn);
  }

  /**
   * @param {string} name
   * @param {object} [args]
   * @param {{timeoutMs?: number}} [opts]
   */
  async callTool(name, args = {}, opts = {}) {
    const timeout = opts.timeoutMs ?? this.requestTimeoutMs;
    const result = await this.request(`tools/call ${name}`, (c) => c.callTool({ name, arguments: /** @type {Record<string, unknown>} */ (args) }, undefined, { timeout }));
    if (result.isError) throw new ToolError(name, result);
    if (result.structuredContent !== undefined) return result.structuredContent;
    const text = Array.isArray(result.content)
      ? result.content.filter((c) => c?.type === "text").map((c) => /** @type {{text: string}} */ (c).text).join("\n")
      : "";
    try {
      return JSON.parse(text);
    } catch {
      return { text };
    }
  }

  /**
   * @param {string} uri
   * @param {{timeoutMs?: number}} [opts]
   */
  async readResourceJson(uri, opts = {}) {
    const timeout = opts.timeoutMs ?? this.requestTimeoutMs;
    const result = await this.request(`resources/read ${uri}`, (c) => c.readResource({ uri }, { timeout }));
    const first = /** @type {{text?: unknown}[]} */ (result.contents).find((c) => typeof c?.text === "string");
    if (!first) throw new Error(`resource ${uri} has no text content`);
    try {
      return JSON.parse(/** @type {string} */ (first.text));
    } catch (e) {
      throw new Error(`resource ${uri} is not JSON: ${message(e)}`);
    }
  }

  /** @param {string} uri */
  async subscribe(uri) {
    await this.request(`resources/subscribe ${uri}`, (c) => c.subscribeResource({ uri }, { timeout: this.requestTimeoutMs }));
    this.subscriptions.add(uri);
    // The stream ended while nothing was subscribed (nobody reopened it): reopen it now.
    if (this.stream === "lost") this.streamLost(this.generation, new Error("no event stream"));
  }

  async close() {
    if (this.closed) return;
    this.closed = true;
    this.closing.abort();
    const transport = this.transport;
    if (transport?.sessionId && this.connected) {
      // Best effort: end the session on the server (bounded, the server may be gone).
      await Promise.race([transport.terminateSession().catch(() => {}), sleep(1000, undefined, { ref: false })]);
    }
    await this.drop();
  }
}

/**
 * The server answered 404 for our session id: it restarted or expired the session.
 * @param {unknown} e
 */
function isSessionGone(e) {
  return SDK !== undefined && e instanceof SDK.StreamableHTTPError && e.code === 404;
}
