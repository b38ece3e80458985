// @ts-check
/**
 * A small MCP client for bitrouter-mcp's streamable HTTP endpoint (JSON-RPC 2.0 over POST, SSE-framed or
 * JSON responses, `mcp-session-id` sessions, a GET event stream for server notifications).
 *
 * It is the only code in the adapter that speaks MCP. It knows nothing about routes or OpenClaw; the
 * rest of the adapter uses the `McpClient` interface below, which tests replace with a fake.
 *
 * @typedef {object} McpClient
 * @property {() => Promise<void>} connect                       initialize a session (idempotent)
 * @property {(name: string, args?: object, opts?: {timeoutMs?: number}) => Promise<any>} callTool
 *           structuredContent of the result (or the JSON in its first text block); throws on isError
 * @property {(uri: string, opts?: {timeoutMs?: number}) => Promise<any>} readResourceJson
 *           parsed JSON of the resource's first text content
 * @property {(uri: string) => Promise<void>} subscribe          resources/subscribe + keep the event stream open
 * @property {(fn: (uri: string) => void) => () => void} onResourceUpdated
 *           also called with "" after a reconnect, when updates may have been missed
 * @property {() => boolean} isConnected
 * @property {() => Promise<void>} close
 */

export const LATEST_PROTOCOL_VERSION = "2025-11-25";

/** Error carrying a JSON-RPC error object or an HTTP failure. */
export class McpError extends Error {
  /**
   * @param {string} message
   * @param {{ code?: number, data?: unknown, status?: number, cause?: unknown }} [extra]
   */
  constructor(message, extra = {}) {
    super(message, extra.cause === undefined ? undefined : { cause: extra.cause });
    this.name = "McpError";
    this.code = extra.code;
    this.data = extra.data;
    this.status = extra.status;
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

/**
 * Incremental parser for `text/event-stream` bodies.
 * Feed decoded text; it calls `onEvent({event, data, id})` for every complete event.
 */
export class SseParser {
  /** @param {(ev: {event: string, data: string, id?: string}) => void} onEvent */
  constructor(onEvent) {
    this.onEvent = onEvent;
    this.buf = "";
    /** @type {string[]} */
    this.data = [];
    this.event = "";
    /** @type {string|undefined} */
    this.id = undefined;
  }

  /** @param {string} chunk */
  push(chunk) {
    this.buf += chunk;
    for (;;) {
      const m = /\r\n|\n|\r/.exec(this.buf);
      if (!m) break;
      // A lone trailing "\r" may be the first half of "\r\n": wait for more input.
      if (m[0] === "\r" && m.index === this.buf.length - 1) break;
      const line = this.buf.slice(0, m.index);
      this.buf = this.buf.slice(m.index + m[0].length);
      this.line(line);
    }
  }

  /** @param {string} line */
  line(line) {
    if (line === "") {
      if (this.data.length > 0) {
        this.onEvent({ event: this.event || "message", data: this.data.join("\n"), id: this.id });
      }
      this.data = [];
      this.event = "";
      return;
    }
    if (line.startsWith(":")) return; // comment / keep-alive
    const i = line.indexOf(":");
    const field = i < 0 ? line : line.slice(0, i);
    let value = i < 0 ? "" : line.slice(i + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") this.data.push(value);
    else if (field === "event") this.event = value;
    else if (field === "id") this.id = value;
  }
}

/**
 * @param {number} ms
 * @param {AbortSignal} [signal]
 */
function sleep(ms, signal) {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    t.unref?.();
    signal?.addEventListener("abort", () => {
      clearTimeout(t);
      resolve(undefined);
    }, { once: true });
  });
}

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
   * @param {number} [opts.requestTimeoutMs]
   * @param {{debug?: (m: string) => void, warn: (m: string) => void}} [opts.logger]
   * @param {boolean} [opts.eventStream]          open the GET stream for subscriptions (default true)
   */
  constructor({ url, clientInfo = { name: "bitrouter-openclaw", version: "0.1.0" }, fetch: f, requestTimeoutMs = 10000, logger, eventStream = true }) {
    this.url = url;
    this.clientInfo = clientInfo;
    this.fetch = f ?? globalThis.fetch.bind(globalThis);
    this.requestTimeoutMs = requestTimeoutMs;
    this.logger = logger;
    this.useEventStream = eventStream;
    /** @type {string|undefined} */
    this.sessionId = undefined;
    this.protocolVersion = LATEST_PROTOCOL_VERSION;
    /** @type {any} */
    this.serverInfo = undefined;
    /** @type {any} */
    this.serverCapabilities = undefined;
    this.nextId = 1;
    /** @type {Map<number|string, {resolve: (v: any) => void, reject: (e: any) => void}>} */
    this.pending = new Map();
    /** @type {Set<(uri: string) => void>} */
    this.updateListeners = new Set();
    /** @type {Set<string>} */
    this.subscriptions = new Set();
    /** @type {Promise<void>|undefined} */
    this.connecting = undefined;
    this.connected = false;
    this.closed = false;
    /** @type {AbortController|undefined} */
    this.streamAbort = undefined;
    this.streamRunning = false;
  }

  isConnected() {
    return this.connected;
  }

  /** @param {string} m */
  debug(m) {
    this.logger?.debug?.(`[bitrouter] mcp: ${m}`);
  }

  /** Builds request headers. @param {boolean} [withSession] */
  headers(withSession = true) {
    /** @type {Record<string, string>} */
    const h = {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
    };
    if (withSession && this.sessionId) {
      h["mcp-session-id"] = this.sessionId;
      h["mcp-protocol-version"] = this.protocolVersion;
    }
    return h;
  }

  async connect() {
    if (this.closed) throw new McpError("client closed");
    if (this.connected) return;
    if (!this.connecting) {
      this.connecting = this.initialize().finally(() => {
        this.connecting = undefined;
      });
    }
    return this.connecting;
  }

  async initialize() {
    this.sessionId = undefined;
    const result = await this.rawRequest(
      "initialize",
      {
        protocolVersion: LATEST_PROTOCOL_VERSION,
        capabilities: {},
        clientInfo: this.clientInfo,
      },
      { timeoutMs: this.requestTimeoutMs, captureSession: true },
    );
    this.protocolVersion = typeof result?.protocolVersion === "string" ? result.protocolVersion : LATEST_PROTOCOL_VERSION;
    this.serverInfo = result?.serverInfo;
    this.serverCapabilities = result?.capabilities;
    await this.post({ jsonrpc: "2.0", method: "notifications/initialized" }, { timeoutMs: this.requestTimeoutMs });
    this.connected = true;
    this.debug(`session ${this.sessionId ?? "(none)"} protocol ${this.protocolVersion}`);
    // A new session has no subscriptions: renew them, then tell listeners updates may have been missed.
    for (const uri of this.subscriptions) {
      await this.request("resources/subscribe", { uri }).catch((e) => this.logger?.warn(`[bitrouter] re-subscribe ${uri} failed: ${e.message}`));
    }
    if (this.subscriptions.size > 0) {
      this.ensureEventStream();
      this.emitUpdated("");
    }
  }

  /**
   * A request on the current session; re-initializes once when the server no longer knows the session.
   * @param {string} method
   * @param {object} [params]
   * @param {{timeoutMs?: number}} [opts]
   */
  async request(method, params, opts = {}) {
    await this.connect();
    try {
      return await this.rawRequest(method, params, opts);
    } catch (e) {
      if (e instanceof McpError && e.status === 404 && this.sessionId) {
        this.debug(`session expired on ${method}; re-initializing`);
        this.connected = false;
        await this.connect();
        return this.rawRequest(method, params, opts);
      }
      // A JSON-RPC error or a failed tool leaves the session usable; anything else (unreachable, HTTP
      // error, timeout) makes the next call start a new session.
      const protocolLevel = e instanceof McpError && (e.code !== undefined || e.data !== undefined);
      if (!protocolLevel) this.connected = false;
      throw e;
    }
  }

  /**
   * @param {string} method
   * @param {object|undefined} params
   * @param {{timeoutMs?: number, captureSession?: boolean}} opts
   */
  async rawRequest(method, params, { timeoutMs = this.requestTimeoutMs, captureSession = false } = {}) {
    const id = this.nextId++;
    /** @type {{resolve: (v: any) => void, reject: (e: any) => void}} */
    let slot = { resolve: () => {}, reject: () => {} };
    const done = new Promise((resolve, reject) => {
      slot = { resolve, reject };
    });
    this.pending.set(id, slot);
    const abort = new AbortController();
    const timer = setTimeout(() => {
      abort.abort();
      slot.reject(new McpError(`MCP ${method} timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    timer.unref?.();
    try {
      /** @type {any} */
      const msg = { jsonrpc: "2.0", id, method };
      if (params !== undefined) msg.params = params;
      const posting = this.post(msg, { signal: abort.signal, captureSession, expectResponseFor: id });
      // Whichever settles first: the response (possibly from another stream) or a transport error.
      posting.catch((e) => slot.reject(e));
      const res = await done;
      abort.abort(); // stop reading the rest of the SSE body, if any
      return res;
    } finally {
      clearTimeout(timer);
      this.pending.delete(id);
    }
  }

  /**
   * POSTs one JSON-RPC message and dispatches whatever comes back.
   * @param {object} msg
   * @param {{signal?: AbortSignal, timeoutMs?: number, captureSession?: boolean, expectResponseFor?: number}} opts
   */
  async post(msg, { signal, timeoutMs, captureSession = false, expectResponseFor } = {}) {
    const sig = signal ?? AbortSignal.timeout(timeoutMs ?? this.requestTimeoutMs);
    let res;
    try {
      res = await this.fetch(this.url, { method: "POST", headers: this.headers(!captureSession), body: JSON.stringify(msg), signal: sig });
    } catch (e) {
      if (sig.aborted) return;
      throw new McpError(`cannot reach ${this.url}: ${/** @type {Error} */ (e).message}`, { cause: e });
    }
    if (captureSession) {
      const sid = res.headers.get("mcp-session-id");
      if (sid) this.sessionId = sid;
    }
    if (res.status === 202 || res.status === 204) {
      await res.body?.cancel().catch(() => {});
      if (expectResponseFor !== undefined) throw new McpError(`server accepted request ${expectResponseFor} without a response`);
      return;
    }
    if (!res.ok) {
      const text = await res.text().catch(() => "");
      throw new McpError(`HTTP ${res.status} from ${this.url}${text ? `: ${text.slice(0, 300)}` : ""}`, { status: res.status });
    }
    const type = (res.headers.get("content-type") ?? "").toLowerCase();
    if (type.includes("text/event-stream")) {
      await this.readSse(res, sig, expectResponseFor);
    } else if (type.includes("application/json")) {
      const text = await res.text();
      if (text.trim()) this.dispatchText(text);
    } else {
      await res.body?.cancel().catch(() => {});
      if (expectResponseFor !== undefined) throw new McpError(`unexpected content-type ${JSON.stringify(type)} from ${this.url}`);
    }
    if (expectResponseFor !== undefined && this.pending.has(expectResponseFor)) {
      throw new McpError(`stream ended without a response to request ${expectResponseFor}`);
    }
  }

  /**
   * Reads an SSE body until it ends, the signal aborts, or the awaited response has arrived.
   * @param {Response} res
   * @param {AbortSignal} [signal]
   * @param {number} [untilResponse]
   */
  async readSse(res, signal, untilResponse) {
    if (!res.body) return;
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    const parser = new SseParser((ev) => {
      if (ev.event === "message" && ev.data.trim()) this.dispatchText(ev.data);
    });
    const onAbort = () => reader.cancel().catch(() => {});
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      for (;;) {
        if (untilResponse !== undefined && !this.pending.has(untilResponse)) break;
        let chunk;
        try {
          chunk = await reader.read();
        } catch (e) {
          if (signal?.aborted) return;
          throw new McpError(`event stream from ${this.url} failed: ${/** @type {Error} */ (e).message}`, { cause: e });
        }
        if (chunk.done) break;
        parser.push(decoder.decode(chunk.value, { stream: true }));
      }
    } finally {
      signal?.removeEventListener("abort", onAbort);
      reader.cancel().catch(() => {});
    }
  }

  /** @param {string} text */
  dispatchText(text) {
    let parsed;
    try {
      parsed = JSON.parse(text);
    } catch {
      this.logger?.warn(`[bitrouter] ignoring non-JSON MCP message: ${text.slice(0, 200)}`);
      return;
    }
    for (const m of Array.isArray(parsed) ? parsed : [parsed]) this.dispatch(m);
  }

  /** @param {any} m */
  dispatch(m) {
    if (!m || typeof m !== "object") return;
    if (m.method === undefined && m.id !== undefined) {
      const slot = this.pending.get(m.id);
      if (!slot) return;
      this.pending.delete(m.id);
      if (m.error) slot.reject(new McpError(`MCP error ${m.error.code}: ${m.error.message}`, { code: m.error.code, data: m.error.data }));
      else slot.resolve(m.result);
      return;
    }
    if (typeof m.method === "string" && m.id !== undefined) {
      // Server-to-client request: answer ping, decline the rest.
      const reply = m.method === "ping"
        ? { jsonrpc: "2.0", id: m.id, result: {} }
        : { jsonrpc: "2.0", id: m.id, error: { code: -32601, message: `method not supported by this client: ${m.method}` } };
      this.post(reply, {}).catch(() => {});
      return;
    }
    if (m.method === "notifications/resources/updated") {
      const uri = typeof m.params?.uri === "string" ? m.params.uri : "";
      this.emitUpdated(uri);
    }
  }

  /** @param {string} uri */
  emitUpdated(uri) {
    for (const fn of this.updateListeners) {
      try {
        fn(uri);
      } catch (e) {
        this.logger?.warn(`[bitrouter] resource update listener failed: ${/** @type {Error} */ (e).message}`);
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
    const result = await this.request("tools/call", { name, arguments: args }, opts);
    const text = Array.isArray(result?.content)
      ? result.content.filter((/** @type {any} */ c) => c?.type === "text").map((/** @type {any} */ c) => c.text).join("\n")
      : "";
    if (result?.isError) throw new McpError(`tool ${name} failed: ${text || JSON.stringify(result.structuredContent ?? {})}`, { data: result });
    if (result?.structuredContent !== undefined) return result.structuredContent;
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
    const result = await this.request("resources/read", { uri }, opts);
    const first = Array.isArray(result?.contents) ? result.contents.find((/** @type {any} */ c) => typeof c?.text === "string") : undefined;
    if (!first) throw new McpError(`resource ${uri} has no text content`);
    try {
      return JSON.parse(first.text);
    } catch (e) {
      throw new McpError(`resource ${uri} is not JSON: ${/** @type {Error} */ (e).message}`);
    }
  }

  /** @param {string} uri */
  async subscribe(uri) {
    this.subscriptions.add(uri);
    await this.request("resources/subscribe", { uri });
    this.ensureEventStream();
  }

  /** Keeps one GET event stream open while subscribed; reconnects with backoff. */
  ensureEventStream() {
    if (!this.useEventStream || this.streamRunning || this.closed) return;
    this.streamRunning = true;
    this.streamAbort = new AbortController();
    const signal = this.streamAbort.signal;
    (async () => {
      let delay = 500;
      let first = true;
      while (!signal.aborted && !this.closed) {
        try {
          if (!this.connected) await this.connect();
          const res = await this.fetch(this.url, {
            method: "GET",
            headers: { accept: "text/event-stream", ...(this.sessionId ? { "mcp-session-id": this.sessionId, "mcp-protocol-version": this.protocolVersion } : {}) },
            signal,
          });
          if (res.status === 405) {
            this.debug("server offers no GET event stream; relying on the refresh timer");
            await res.body?.cancel().catch(() => {});
            break;
          }
          if (res.status === 404) {
            await res.body?.cancel().catch(() => {});
            this.connected = false; // session gone: connect() re-initializes and re-subscribes
            delay = 250;
          } else {
            if (!res.ok) throw new McpError(`GET event stream: HTTP ${res.status}`, { status: res.status });
            if (!first) this.emitUpdated(""); // we may have missed updates while disconnected
            first = false;
            delay = 500;
            await this.readSse(res, signal);
          }
        } catch (e) {
          if (signal.aborted) break;
          this.debug(`event stream interrupted: ${/** @type {Error} */ (e).message}`);
          if (isConnectionRefused(e)) this.connected = false;
        }
        if (signal.aborted) break;
        first = false;
        await sleep(delay, signal);
        delay = Math.min(delay * 2, 30000);
      }
      this.streamRunning = false;
    })();
  }

  async close() {
    if (this.closed) return;
    this.closed = true;
    this.streamAbort?.abort();
    for (const slot of this.pending.values()) slot.reject(new McpError("client closed"));
    this.pending.clear();
    if (this.sessionId && this.connected) {
      try {
        const res = await this.fetch(this.url, {
          method: "DELETE",
          headers: { "mcp-session-id": this.sessionId, "mcp-protocol-version": this.protocolVersion },
          signal: AbortSignal.timeout(1000),
        });
        await res.body?.cancel().catch(() => {});
      } catch {
        // best effort
      }
    }
    this.connected = false;
  }
}
