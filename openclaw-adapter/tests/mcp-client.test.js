// The MCP client (the SDK's Client + StreamableHTTPClientTransport and the adapter's glue) over real
// HTTP on 127.0.0.1:0 against a server shaped like rmcp's streamable HTTP transport (sessions,
// SSE-framed answers with a priming event, GET notification stream, 404 for a forgotten session).

import assert from "node:assert/strict";
import net from "node:net";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";

import { McpHttpClient, ToolError, isConnectionRefused, isProtocolError } from "../src/mcp-client.js";
import { SAMPLE_ROUTES, startFakeMcpServer } from "./helpers/fake-mcp-server.js";
import { waitFor } from "./helpers/fakes.js";

const quiet = { warn: () => {}, debug: () => {} };

describe("McpHttpClient against an rmcp-shaped server", () => {
  let server;
  before(async () => {
    server = await startFakeMcpServer();
  });
  after(async () => {
    await server.close();
  });

  it("initializes a session and sends the session and protocol headers afterwards", async () => {
    const c = new McpHttpClient({ url: server.url, logger: quiet });
    await c.connect();
    assert.equal(c.isConnected(), true);
    assert.equal(c.serverInfo.name, "bitrouter-mcp");
    assert.equal(c.protocolVersion, "2025-11-25");
    assert.ok(c.sessionId);
    const init = server.state.calls.find((x) => x.session === c.sessionId && x.method === "initialize");
    assert.equal(init.params.protocolVersion, "2025-11-25");
    assert.ok(server.state.calls.some((x) => x.session === c.sessionId && x.method === "notifications/initialized"));
    await c.callTool("bitrouter_status");
    assert.equal(server.state.protocolHeaders.at(-1), "2025-11-25");
    await c.close();
    assert.equal(server.state.sessions.has(init.session), false, "DELETE ends the session");
  });

  it("calls tools and returns structuredContent", async () => {
    const c = new McpHttpClient({ url: server.url, logger: quiet });
    const status = await c.callTool("bitrouter_status");
    assert.equal(status.daemon.healthy, true);
    const key = await c.callTool("bitrouter_keygen", { scope: "api", exp: "30d", name: "openclaw" });
    assert.equal(key.token.split(".").length, 3);
    assert.equal(key.claims.scope, "api");
    await c.close();
  });

  it("turns isError tool results and JSON-RPC errors into exceptions without dropping the session", async () => {
    const c = new McpHttpClient({ url: server.url, logger: quiet });
    await assert.rejects(c.callTool("bitrouter_fail"), (e) => {
      assert.ok(e instanceof ToolError);
      assert.match(e.message, /tool bitrouter_fail failed: argument `x` is required/);
      assert.equal(e.code, "invalid_argument", "the server's _meta[\"bitrouter/error\"].code");
      assert.equal(e.field, "x");
      return true;
    });
    const session = c.sessionId;
    await assert.rejects(c.callTool("nope"), (e) => isProtocolError(e) && e.code === -32602);
    assert.equal(c.isConnected(), true);
    assert.equal(c.sessionId, session);
    await c.close();
  });

  it("reads the routes resource as JSON", async () => {
    const c = new McpHttpClient({ url: server.url, logger: quiet });
    assert.deepEqual(await c.readResourceJson("bitrouter://routes"), SAMPLE_ROUTES);
    await c.close();
  });

  it("receives notifications/resources/updated on the GET stream after subscribing", async () => {
    const c = new McpHttpClient({ url: server.url, logger: quiet });
    const seen = [];
    c.onResourceUpdated((uri) => seen.push(uri));
    await c.subscribe("bitrouter://routes");
    await waitFor(() => server.openStreams() > 0, 2000, "GET stream");
    server.setRoutes({ ...SAMPLE_ROUTES, daemon_healthy: false });
    await waitFor(() => seen.includes("bitrouter://routes"), 2000, "notification");
    assert.equal((await c.readResourceJson("bitrouter://routes")).daemon_healthy, false);
    server.setRoutes(SAMPLE_ROUTES);
    await c.close();
  });

  it("answers a server ping on the stream", async () => {
    const c = new McpHttpClient({ url: server.url, logger: quiet });
    await c.subscribe("bitrouter://routes");
    await waitFor(() => server.openStreams() > 0, 2000, "GET stream");
    const before = server.state.calls.length;
    server.pingClients();
    await waitFor(() => server.state.calls.slice(before).some((x) => x.method === "(response)"), 2000, "ping reply");
    await c.close();
  });

  it("re-initializes and re-subscribes when the server forgets the session", async () => {
    const c = new McpHttpClient({ url: server.url, logger: quiet });
    const seen = [];
    c.onResourceUpdated((uri) => seen.push(uri));
    await c.subscribe("bitrouter://routes");
    const oldSession = c.sessionId;
    server.dropSessions();
    const status = await c.callTool("bitrouter_status");
    assert.equal(status.daemon.healthy, true);
    assert.notEqual(c.sessionId, oldSession);
    assert.ok(server.state.calls.some((x) => x.session === c.sessionId && x.method === "resources/subscribe"));
    assert.ok(seen.includes(""), "listeners are told that updates may have been missed");
    await waitFor(() => server.openStreams() > 0, 3000, "GET stream on the new session");
    await c.close();
  });

  it("after the server forgets the session, reopens the stream on a new one by itself", async () => {
    const c = new McpHttpClient({ url: server.url, logger: quiet });
    const seen = [];
    c.onResourceUpdated((uri) => seen.push(uri));
    await c.subscribe("bitrouter://routes");
    await waitFor(() => server.openStreams() > 0, 2000, "GET stream");
    const oldSession = c.sessionId;
    server.dropSessions(); // as a restarted server: streams end, sessions unknown
    // Listeners hear "" (updates may have been missed) once the new session is subscribed.
    await waitFor(() => seen.includes("") && server.openStreams() > 0, 5000, "a new session's stream, with no call made");
    assert.notEqual(c.sessionId, oldSession);
    server.setRoutes({ ...SAMPLE_ROUTES, daemon_healthy: false });
    await waitFor(() => seen.includes("bitrouter://routes"), 2000, "notification on the new session");
    server.setRoutes(SAMPLE_ROUTES);
    await c.close();
  });

  it("reopens an ended stream on the same session while the server still knows it", async () => {
    const c = new McpHttpClient({ url: server.url, logger: quiet });
    const seen = [];
    c.onResourceUpdated((uri) => seen.push(uri));
    await c.subscribe("bitrouter://routes");
    await waitFor(() => server.openStreams() > 0, 2000, "GET stream");
    const session = c.sessionId;
    server.endStreams();
    await waitFor(() => seen.includes("") && server.openStreams() > 0, 5000, "the stream reopened");
    assert.equal(c.sessionId, session);
    server.setRoutes({ ...SAMPLE_ROUTES, daemon_healthy: false });
    await waitFor(() => seen.includes("bitrouter://routes"), 2000, "notification on the reopened stream");
    server.setRoutes(SAMPLE_ROUTES);
    await c.close();
  });

  it("a subscription made after the stream ended reopens it", async () => {
    const c = new McpHttpClient({ url: server.url, logger: quiet });
    await c.connect();
    await waitFor(() => server.openStreams() > 0, 2000, "GET stream");
    server.endStreams();
    await waitFor(() => server.openStreams() === 0, 2000, "stream ended");
    const seen = [];
    c.onResourceUpdated((uri) => seen.push(uri));
    await c.subscribe("bitrouter://routes");
    await waitFor(() => server.openStreams() > 0, 5000, "the stream reopened by the subscription");
    server.setRoutes({ ...SAMPLE_ROUTES, daemon_healthy: false });
    await waitFor(() => seen.includes("bitrouter://routes"), 2000, "notification");
    server.setRoutes(SAMPLE_ROUTES);
    await c.close();
  });

  it("times out a request that gets no answer", async () => {
    const hang = net.createServer((sock) => sock.on("data", () => {}));
    await new Promise((r) => hang.listen(0, "127.0.0.1", r));
    const c = new McpHttpClient({ url: `http://127.0.0.1:${hang.address().port}/mcp`, requestTimeoutMs: 200, logger: quiet });
    await assert.rejects(c.connect(), /timed out/);
    await c.close();
    await new Promise((r) => hang.close(r));
  });
});

describe("McpHttpClient transport variants", () => {
  it("accepts plain JSON answers", async () => {
    const server = await startFakeMcpServer({ json: true });
    const c = new McpHttpClient({ url: server.url, logger: quiet });
    assert.deepEqual((await c.readResourceJson("bitrouter://routes")).direct_providers, ["openai", "anthropic", "google"]);
    await c.close();
    await server.close();
  });

  it("lives without a GET stream (405)", async () => {
    const server = await startFakeMcpServer({ noGetStream: true });
    const c = new McpHttpClient({ url: server.url, logger: quiet });
    await c.subscribe("bitrouter://routes");
    await sleep(50);
    assert.equal((await c.callTool("bitrouter_status")).listen, "127.0.0.1:8787");
    await c.close();
    await server.close();
  });

  it("reports connection refused recognisably", async () => {
    const probe = net.createServer();
    await new Promise((r) => probe.listen(0, "127.0.0.1", r));
    const port = probe.address().port;
    await new Promise((r) => probe.close(r));
    const c = new McpHttpClient({ url: `http://127.0.0.1:${port}/mcp`, logger: quiet });
    await assert.rejects(c.connect(), (e) => isConnectionRefused(e));
    await c.close();
  });

  it("reports a non-MCP HTTP server as an HTTP error, not as refused", async () => {
    const http = await import("node:http");
    const other = http.createServer((_req, res) => res.writeHead(404).end("not here"));
    await new Promise((r) => other.listen(0, "127.0.0.1", r));
    const c = new McpHttpClient({ url: `http://127.0.0.1:${other.address().port}/mcp`, logger: quiet });
    await assert.rejects(c.connect(), (e) => !isConnectionRefused(e) && e.code === 404);
    await c.close();
    await new Promise((r) => other.close(r));
  });

  it("sends the bearer token a server started with --auth-token wants", async () => {
    const server = await startFakeMcpServer({ authToken: "s3cret" });
    const without = new McpHttpClient({ url: server.url, logger: quiet });
    await assert.rejects(without.connect(), (e) => e.code === 401);
    await without.close();
    const c = new McpHttpClient({ url: server.url, authToken: "s3cret", logger: quiet });
    await c.subscribe("bitrouter://routes");
    assert.equal((await c.callTool("bitrouter_status")).daemon.healthy, true);
    await waitFor(() => server.openStreams() > 0, 2000, "GET stream with the token");
    await c.close();
    assert.equal(server.state.unauthorized, 1, "only the client without the token was refused");
    await server.close();
  });

  it("without the event stream, opens no GET stream on the server", async () => {
    const server = await startFakeMcpServer();
    const c = new McpHttpClient({ url: server.url, eventStream: false, logger: quiet });
    await c.callTool("bitrouter_status");
    await sleep(50);
    assert.equal(server.openStreams(), 0);
    await c.close();
    await server.close();
  });
});

describe("a linked checkout without its npm install", () => {
  it("says to install the SDK instead of a bare module-not-found", async () => {
    const fs = await import("node:fs");
    const os = await import("node:os");
    const path = await import("node:path");
    const { pathToFileURL } = await import("node:url");
    // The plugin's files as a clone has them, with no node_modules anywhere above.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "adapter-no-deps-"));
    try {
      const here = new URL("..", import.meta.url);
      fs.cpSync(new URL("src", here), path.join(dir, "src"), { recursive: true });
      fs.copyFileSync(new URL("package.json", here), path.join(dir, "package.json"));
      const mod = await import(pathToFileURL(path.join(dir, "src", "mcp-client.js")).href);
      await assert.rejects(mod.loadSdk(), (e) => {
        assert.match(e.message, /@modelcontextprotocol\/sdk is not installed/);
        assert.ok(e.message.includes(`npm install --no-save\` in ${dir}`), e.message);
        return true;
      });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
