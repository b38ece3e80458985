#!/usr/bin/env node
// A fake upstream LLM provider for the end-to-end check, shaped like the real ones from BitRouter's side:
//
//   openai     POST /v1/chat/completions (Authorization: Bearer; SSE chunks when `stream`, usage with
//              stream_options.include_usage), GET /v1/models
//   anthropic  POST /v1/messages (x-api-key and anthropic-version required, max_tokens required; SSE
//              events message_start .. message_stop), GET /v1/models; overload is 529 overloaded_error
//
// HTTPS when given a certificate (tests/helpers/make-test-ca.js makes a CA and a leaf for 127.0.0.1), plain
// HTTP otherwise (a local provider). Failure modes, switchable at run time:
//   ok | fail500 | overloaded (529 Anthropic, 503 OpenAI) | ratelimit (429) | stall | refuse (listener and
//   open connections closed) | chat-fail (chat answers the overload error while GET /v1/models answers 200)
// plus `delayMs`, a pause before each chat answer (the outcome is decided after it, so a mode switched
// during the pause hits the request in flight).
//
// As a program: env FAKE_UPSTREAM_PROTOCOL (openai), FAKE_UPSTREAM_NAME, FAKE_UPSTREAM_REPLY, FAKE_UPSTREAM_PORT
// (0 = any), FAKE_UPSTREAM_RECORD (JSON lines, one per request answered), FAKE_UPSTREAM_ARRIVALS (a line per
// chat request as it arrives), FAKE_UPSTREAM_KEY (the key it requires),
// FAKE_UPSTREAM_TLS_CERT / FAKE_UPSTREAM_TLS_KEY (PEM files), FAKE_UPSTREAM_MODE_FILE (JSON {"mode","delayMs"},
// re-read every 50 ms: what the shell writes to break or heal it). Prints {"port","reply","url"} once listening.
// Also importable: startFakeUpstream(opts).

import fs from "node:fs";
import http from "node:http";
import https from "node:https";
import { pathToFileURL } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";

export const REPLY_TEXT = "Hi from the fake upstream (e2e-7f3a).";
export const MODES = ["ok", "fail500", "overloaded", "ratelimit", "stall", "refuse", "chat-fail"];

const ERRORS = {
  openai: {
    fail500: [500, { error: { message: "The server had an error while processing your request. Sorry about that!", type: "server_error", param: null, code: null } }],
    overloaded: [503, { error: { message: "The engine is currently overloaded, please try again later.", type: "server_error", param: null, code: null } }],
    ratelimit: [429, { error: { message: "Rate limit reached for requests. Please try again in 1s.", type: "requests", param: null, code: "rate_limit_exceeded" } }],
    missingKey: [401, { error: { message: "You didn't provide an API key.", type: "invalid_request_error", param: null, code: null } }],
    badKey: [401, { error: { message: "Incorrect API key provided.", type: "invalid_request_error", param: null, code: "invalid_api_key" } }],
    notFound: [404, { error: { message: "Invalid URL", type: "invalid_request_error", param: null, code: null } }],
    badRequest: [400, { error: { message: "We could not parse the JSON body of your request.", type: "invalid_request_error", param: null, code: null } }],
  },
  anthropic: {
    fail500: [500, { type: "error", error: { type: "api_error", message: "Internal server error" } }],
    overloaded: [529, { type: "error", error: { type: "overloaded_error", message: "Overloaded" } }],
    ratelimit: [429, { type: "error", error: { type: "rate_limit_error", message: "Number of requests has exceeded your rate limit." } }],
    missingKey: [401, { type: "error", error: { type: "authentication_error", message: "x-api-key header is required" } }],
    badKey: [401, { type: "error", error: { type: "authentication_error", message: "invalid x-api-key" } }],
    notFound: [404, { type: "error", error: { type: "not_found_error", message: "Not found" } }],
    badRequest: [400, { type: "error", error: { type: "invalid_request_error", message: "max_tokens: Field required" } }],
    noVersion: [400, { type: "error", error: { type: "invalid_request_error", message: "anthropic-version: header is required" } }],
  },
};

/**
 * @param {{ protocol?: "openai"|"anthropic", name?: string, port?: number, record?: string, reply?: string,
 *           key?: string, tls?: { cert: string, key: string }, mode?: string, delayMs?: number,
 *           arrivals?: string }} [opts] `arrivals`: a file that gets a line as each chat request arrives
 *           (before any delay), so a script can break the upstream while that request is in flight.
 */
export function startFakeUpstream({
  protocol = "openai",
  name = "fake",
  port = 0,
  record,
  reply = REPLY_TEXT,
  key,
  tls,
  mode = "ok",
  delayMs = 0,
  arrivals,
} = {}) {
  /** @type {any[]} */
  const requests = [];
  const state = { mode, delayMs };
  const handler = (req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (d) => (body += d));
    req.on("end", () => serve(req, res, body));
  };
  const serve = async (req, res, body) => {
    /** @type {any} */
    let json;
    try {
      json = body ? JSON.parse(body) : undefined;
    } catch {
      json = undefined;
    }
    const path = (req.url ?? "/").split("?")[0];
    const chatPath = protocol === "anthropic" ? "/v1/messages" : "/v1/chat/completions";
    const kind = req.method === "POST" && path === chatPath ? "chat" : req.method === "GET" && path === "/v1/models" ? "listing" : "other";
    const credential =
      protocol === "anthropic"
        ? req.headers["x-api-key"] ?? null
        : (req.headers.authorization ?? "").replace(/^Bearer /, "") || null;
    const entry = {
      time: new Date().toISOString(),
      upstream: name,
      kind,
      method: req.method,
      path,
      model: json?.model,
      stream: json?.stream === true,
      authorization: req.headers.authorization ?? null,
      credential,
      status: 0,
    };
    requests.push(entry);
    const answer = (status, obj, headers = {}) => {
      entry.status = status;
      if (record) fs.appendFileSync(record, `${JSON.stringify(entry)}\n`);
      res.writeHead(status, { "content-type": "application/json", ...headers });
      res.end(JSON.stringify(obj));
    };
    const fail = (what) => answer(...ERRORS[protocol][what], what === "ratelimit" ? { "retry-after": "1" } : {});

    if (kind === "chat" && arrivals) fs.appendFileSync(arrivals, `${JSON.stringify({ time: entry.time, upstream: name, model: entry.model })}\n`);
    if (kind === "chat" && state.delayMs > 0) await sleep(state.delayMs);
    if (res.destroyed) return; // refused while it waited
    const m = state.mode;
    if (m === "stall") {
      if (record) fs.appendFileSync(record, `${JSON.stringify(entry)}\n`);
      return; // never answered
    }
    if (m === "fail500" || m === "overloaded" || m === "ratelimit") return fail(m);
    if (m === "chat-fail" && kind === "chat") return fail("overloaded");
    if (kind === "other") return fail("notFound");
    if (protocol === "anthropic" && !req.headers["anthropic-version"]) return fail("noVersion");
    if (!credential) return fail("missingKey");
    if (key && credential !== key) return fail("badKey");

    if (kind === "listing") {
      const ids = protocol === "anthropic" ? [`${name}-model`, "claude-sonnet-4-20250514"] : [`${name}-model`, "gpt-4o", "fake-model-1"];
      const data =
        protocol === "anthropic"
          ? { data: ids.map((id) => ({ type: "model", id, display_name: id, created_at: "2025-05-14T00:00:00Z" })), has_more: false, first_id: ids[0], last_id: ids.at(-1) }
          : { object: "list", data: ids.map((id) => ({ id, object: "model", created: 0, owned_by: "system" })) };
      return answer(200, data);
    }
    if (!json || typeof json.model !== "string") return fail("badRequest");
    if (protocol === "anthropic" && typeof json.max_tokens !== "number") return fail("badRequest");
    const usage = { input: Math.max(1, Math.floor(body.length / 4)), output: reply.split(" ").length };
    entry.status = 200;
    if (record) fs.appendFileSync(record, `${JSON.stringify(entry)}\n`);
    if (entry.stream) return streamReply(res, protocol, json, reply, usage);
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify(protocol === "anthropic" ? anthropicMessage(json.model, reply, usage) : openaiCompletion(json.model, reply, usage)));
  };

  const server = tls ? https.createServer({ cert: tls.cert, key: tls.key }, handler) : http.createServer(handler);
  const scheme = tls ? "https" : "http";
  let listening = false;
  const listen = (p) =>
    new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(p, "127.0.0.1", () => {
        server.off("error", reject);
        listening = true;
        resolve(/** @type {import("node:net").AddressInfo} */ (server.address()).port);
      });
    });
  const close = () =>
    new Promise((r) => {
      if (!listening) return r(undefined);
      listening = false;
      server.close(() => r(undefined));
      server.closeAllConnections();
    });

  return listen(port).then((actualPort) => {
    /** @param {{ mode?: string, delayMs?: number }} next */
    const setMode = async (next) => {
      if (next.mode && !MODES.includes(next.mode)) throw new Error(`unknown mode ${next.mode}`);
      const before = state.mode;
      if (next.mode) state.mode = next.mode;
      if (typeof next.delayMs === "number") state.delayMs = next.delayMs;
      if (state.mode === "refuse" && before !== "refuse") await close();
      if (state.mode !== "refuse" && !listening) await listen(actualPort);
    };
    return {
      port: actualPort,
      url: protocol === "anthropic" ? `${scheme}://127.0.0.1:${actualPort}` : `${scheme}://127.0.0.1:${actualPort}/v1`,
      requests,
      setMode,
      mode: () => ({ ...state }),
      close,
    };
  });
}

function openaiCompletion(model, text, usage) {
  return {
    id: "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
    object: "chat.completion",
    created: Math.floor(Date.now() / 1000),
    model,
    system_fingerprint: "fp_fake",
    choices: [{ index: 0, message: { role: "assistant", content: text, refusal: null }, logprobs: null, finish_reason: "stop" }],
    usage: { prompt_tokens: usage.input, completion_tokens: usage.output, total_tokens: usage.input + usage.output },
  };
}

function anthropicMessage(model, text, usage) {
  return {
    id: "msg_013Zva2CMHLNnXjNJJKqJ2EF",
    type: "message",
    role: "assistant",
    model,
    content: [{ type: "text", text }],
    stop_reason: "end_turn",
    stop_sequence: null,
    usage: { input_tokens: usage.input, output_tokens: usage.output, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
  };
}

function streamReply(res, protocol, json, text, usage) {
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive" });
  const words = text.split(/(?<= )/);
  if (protocol === "anthropic") {
    const event = (type, data) => res.write(`event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`);
    event("message_start", {
      message: { id: "msg_01", type: "message", role: "assistant", model: json.model, content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: usage.input, output_tokens: 1 } },
    });
    event("content_block_start", { index: 0, content_block: { type: "text", text: "" } });
    event("ping", {});
    for (const w of words) event("content_block_delta", { index: 0, delta: { type: "text_delta", text: w } });
    event("content_block_stop", { index: 0 });
    event("message_delta", { delta: { stop_reason: "end_turn", stop_sequence: null }, usage: { output_tokens: usage.output } });
    event("message_stop", {});
    res.end();
    return;
  }
  const id = "chatcmpl-fake";
  const created = Math.floor(Date.now() / 1000);
  const chunk = (delta, finish = null, extra = {}) =>
    res.write(`data: ${JSON.stringify({ id, object: "chat.completion.chunk", created, model: json.model, choices: [{ index: 0, delta, finish_reason: finish }], ...extra })}\n\n`);
  chunk({ role: "assistant", content: "" });
  for (const w of words) chunk({ content: w });
  chunk({}, "stop");
  if (json.stream_options?.include_usage) {
    const u = { prompt_tokens: usage.input, completion_tokens: usage.output, total_tokens: usage.input + usage.output };
    res.write(`data: ${JSON.stringify({ id, object: "chat.completion.chunk", created, model: json.model, choices: [], usage: u })}\n\n`);
  }
  res.end("data: [DONE]\n\n");
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const env = process.env;
  const tls = env.FAKE_UPSTREAM_TLS_CERT
    ? { cert: fs.readFileSync(env.FAKE_UPSTREAM_TLS_CERT), key: fs.readFileSync(env.FAKE_UPSTREAM_TLS_KEY ?? "") }
    : undefined;
  const reply = env.FAKE_UPSTREAM_REPLY || REPLY_TEXT;
  const up = await startFakeUpstream({
    protocol: env.FAKE_UPSTREAM_PROTOCOL === "anthropic" ? "anthropic" : "openai",
    name: env.FAKE_UPSTREAM_NAME || "fake",
    port: Number(env.FAKE_UPSTREAM_PORT ?? 0),
    record: env.FAKE_UPSTREAM_RECORD,
    arrivals: env.FAKE_UPSTREAM_ARRIVALS,
    key: env.FAKE_UPSTREAM_KEY || undefined,
    reply,
    tls,
  });
  const modeFile = env.FAKE_UPSTREAM_MODE_FILE;
  if (modeFile) {
    let last = "";
    setInterval(() => {
      let text = "";
      try {
        text = fs.readFileSync(modeFile, "utf8").trim();
      } catch {
        return;
      }
      if (!text || text === last) return;
      last = text;
      try {
        up.setMode(JSON.parse(text)).catch((e) => process.stderr.write(`fake-upstream: ${e.message}\n`));
      } catch (e) {
        process.stderr.write(`fake-upstream: bad mode file: ${e.message}\n`);
      }
    }, 50).unref();
  }
  process.stdout.write(`${JSON.stringify({ port: up.port, reply, url: up.url })}\n`);
  const stop = () => up.close().then(() => process.exit(0));
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  setInterval(() => {}, 1 << 30); // stay up while the listener is closed (mode refuse)
}
