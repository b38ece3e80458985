// A stand-in for bitrouter-mcp's streamable HTTP endpoint, shaped like rmcp's legacy session mode:
// `initialize` creates an `mcp-session-id`; POST answers are SSE (a priming event with an id and empty
// data, then the message) unless `json: true`; notifications get 202; GET opens the notification
// stream; an unknown session gets 404; DELETE ends a session.
//
// Used by the MCP client tests over real sockets on 127.0.0.1:0.

import http from "node:http";
import { randomUUID } from "node:crypto";

export const SAMPLE_ROUTES = Object.freeze({
  models: [
    {
      name: "smart",
      strategy: "priority",
      endpoints: [
        { provider: "anthropic", model_id: "claude-sonnet-4-20250514", active: true },
        { provider: "openai", model_id: "gpt-4o", active: false },
      ],
    },
    {
      name: "fast",
      strategy: "load_balance",
      endpoints: [
        { provider: "openai", model_id: "gpt-4o-mini", active: true },
        { provider: "anthropic", model_id: "claude-3.5-haiku", active: true },
      ],
    },
  ],
  direct_providers: ["openai", "anthropic", "google"],
  intercept_all_models: false,
  daemon_healthy: true,
  updated_at: "2026-11-24T21:00:00Z",
});

/** A JWT-shaped token (not signed; the fake never checks it). */
export function fakeJwt(claims) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  return `${b64({ alg: "SOL_EDDSA", typ: "JWT" })}.${b64(claims)}.${Buffer.from("sig").toString("base64url")}`;
}

/**
 * @param {object} [o]
 * @param {number} [o.port]
 * @param {object} [o.routes]
 * @param {boolean} [o.json]          answer POSTs with application/json instead of SSE
 * @param {boolean} [o.noGetStream]   answer GET with 405
 * @param {string} [o.authToken]      require `Authorization: Bearer <authToken>` (401 otherwise)
 */
export async function startFakeMcpServer({ port = 0, routes = SAMPLE_ROUTES, json = false, noGetStream = false, authToken } = {}) {
  const state = {
    routes: structuredClone(routes),
    /** @type {Map<string, {subscribed: Set<string>, streams: Set<http.ServerResponse>}>} */
    sessions: new Map(),
    /** @type {{method: string, params: any, session?: string}[]} */
    calls: [],
    keygenCount: 0,
    protocolHeaders: [],
  };

  const toolResult = (obj) => ({ content: [{ type: "text", text: JSON.stringify(obj) }], structuredContent: obj, isError: false });

  function handle(msg) {
    switch (msg.method) {
      case "ping":
        return {};
      case "tools/call": {
        const { name, arguments: args = {} } = msg.params ?? {};
        if (name === "bitrouter_status") {
          return toolResult({
            listen: "127.0.0.1:8787",
            daemon: { state: state.routes.daemon_healthy ? "healthy" : "unhealthy", healthy: state.routes.daemon_healthy !== false },
            providers: ["openai", "anthropic"],
            models: state.routes.models.map((m) => m.name),
          });
        }
        if (name === "bitrouter_keygen") {
          state.keygenCount += 1;
          const iat = Math.floor(Date.now() / 1000);
          const claims = { iss: "solana:x:y", iat, exp: iat + 30 * 24 * 3600, scope: args.scope, n: state.keygenCount };
          return toolResult({ token: fakeJwt(claims), claims, saved_to: `/fake/tokens/${args.name}.jwt` });
        }
        if (name === "bitrouter_fail") {
          // The error shape of bitrouter-mcp's tools: the message, and the code in _meta.
          return {
            content: [{ type: "text", text: "argument `x` is required" }],
            isError: true,
            _meta: { "bitrouter/error": { code: "invalid_argument", field: "x" } },
          };
        }
        throw { code: -32602, message: `unknown tool ${name}` };
      }
      case "resources/read":
        if (msg.params?.uri !== "bitrouter://routes") throw { code: -32002, message: "resource not found" };
        return { contents: [{ uri: "bitrouter://routes", mimeType: "application/json", text: JSON.stringify(state.routes) }] };
      case "resources/subscribe":
        return {};
      default:
        throw { code: -32601, message: `method not found: ${msg.method}` };
    }
  }

  function sendMessage(res, body, sessionId) {
    const headers = {};
    if (sessionId) headers["mcp-session-id"] = sessionId;
    if (json) {
      res.writeHead(200, { ...headers, "content-type": "application/json" });
      res.end(JSON.stringify(body));
      return;
    }
    res.writeHead(200, { ...headers, "content-type": "text/event-stream", "cache-control": "no-cache" });
    // Priming event (id, empty data), then the message split over two writes with CRLF line ends.
    res.write("id: 0\r\ndata:\r\n\r\n");
    const text = `event: message\r\ndata: ${JSON.stringify(body)}\r\n\r\n`;
    const cut = Math.floor(text.length / 2);
    res.write(text.slice(0, cut));
    setTimeout(() => res.end(text.slice(cut)), 5);
  }

  const server = http.createServer((req, res) => {
    if (authToken && req.headers.authorization !== `Bearer ${authToken}`) {
      state.unauthorized = (state.unauthorized ?? 0) + 1;
      res.writeHead(401, { "www-authenticate": "Bearer" }).end("missing or wrong bearer token");
      return;
    }
    const sid = req.headers["mcp-session-id"];
    if (req.method === "GET") {
      if (noGetStream) {
        res.writeHead(405).end();
        return;
      }
      const s = typeof sid === "string" ? state.sessions.get(sid) : undefined;
      if (!s) {
        res.writeHead(sid ? 404 : 400).end();
        return;
      }
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
      res.write(": stream open\n\n");
      s.streams.add(res);
      req.on("close", () => s.streams.delete(res));
      return;
    }
    if (req.method === "DELETE") {
      if (typeof sid === "string") state.sessions.delete(sid);
      res.writeHead(200).end();
      return;
    }
    let raw = "";
    req.on("data", (d) => (raw += d));
    req.on("end", () => {
      let msg;
      try {
        msg = JSON.parse(raw);
      } catch {
        res.writeHead(400).end("bad json");
        return;
      }
      state.protocolHeaders.push(req.headers["mcp-protocol-version"]);
      if (msg.method === "initialize") {
        const newSid = randomUUID();
        state.sessions.set(newSid, { subscribed: new Set(), streams: new Set() });
        state.calls.push({ method: msg.method, params: msg.params, session: newSid });
        sendMessage(res, {
          jsonrpc: "2.0",
          id: msg.id,
          result: {
            protocolVersion: "2025-11-25",
            capabilities: { tools: {}, resources: { subscribe: true } },
            serverInfo: { name: "bitrouter-mcp", version: "0.1.0" },
          },
        }, newSid);
        return;
      }
      const session = typeof sid === "string" ? state.sessions.get(sid) : undefined;
      if (!session) {
        res.writeHead(sid ? 404 : 400, { "content-type": "text/plain" }).end("session not found");
        return;
      }
      state.calls.push({ method: msg.method ?? "(response)", params: msg.params, session: sid });
      if (msg.id === undefined || msg.method === undefined) {
        res.writeHead(202).end();
        return;
      }
      if (msg.method === "resources/subscribe") session.subscribed.add(msg.params?.uri);
      let body;
      try {
        body = { jsonrpc: "2.0", id: msg.id, result: handle(msg) };
      } catch (e) {
        body = { jsonrpc: "2.0", id: msg.id, error: { code: e.code ?? -32603, message: e.message ?? String(e) } };
      }
      sendMessage(res, body);
    });
  });

  await new Promise((resolve) => server.listen(port, "127.0.0.1", resolve));
  const actualPort = server.address().port;

  return {
    url: `http://127.0.0.1:${actualPort}/mcp`,
    port: actualPort,
    state,
    /** Replaces the route table and notifies subscribed sessions on their GET streams. */
    setRoutes(doc) {
      state.routes = structuredClone(doc);
      const note = JSON.stringify({ jsonrpc: "2.0", method: "notifications/resources/updated", params: { uri: "bitrouter://routes" } });
      for (const s of state.sessions.values()) {
        if (!s.subscribed.has("bitrouter://routes")) continue;
        for (const stream of s.streams) stream.write(`event: message\ndata: ${note}\n\n`);
      }
    },
    /** Sends a server-to-client ping on every open GET stream. */
    pingClients() {
      for (const s of state.sessions.values()) {
        for (const stream of s.streams) stream.write(`data: ${JSON.stringify({ jsonrpc: "2.0", id: "srv-1", method: "ping" })}\n\n`);
      }
    },
    /** Ends every GET stream (as a proxy timing out would); the sessions stay. */
    endStreams() {
      for (const s of state.sessions.values()) for (const stream of s.streams) stream.end();
    },
    /** Forgets every session (as a restarted server would) and closes their streams. */
    dropSessions() {
      for (const s of state.sessions.values()) for (const stream of s.streams) stream.end();
      state.sessions.clear();
    },
    openStreams() {
      let n = 0;
      for (const s of state.sessions.values()) n += s.streams.size;
      return n;
    },
    async close() {
      for (const s of state.sessions.values()) for (const stream of s.streams) stream.destroy();
      server.closeAllConnections?.();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
