#!/usr/bin/env node
// A fake OpenAI-compatible upstream for the end-to-end check: BitRouter's provider `fake` points here.
//
//   POST /v1/chat/completions  answers REPLY_TEXT, as SSE when the body says `stream: true`, else JSON
//   GET  /v1/models            lists fake-model-1
//
// Every request is appended to $FAKE_UPSTREAM_RECORD (JSON lines: method, path, model, stream,
// authorization). Listens on 127.0.0.1:$FAKE_UPSTREAM_PORT (0 = any free port) and prints
// `{"port": N, "reply": REPLY_TEXT}` on stdout once it listens. Also importable: startFakeUpstream({ port, record }).

import fs from "node:fs";
import http from "node:http";
import { pathToFileURL } from "node:url";

export const REPLY_TEXT = "Hi from the fake upstream (e2e-7f3a).";
export const MODELS = ["fake-model-1"];

/**
 * @param {{ port?: number, record?: string, reply?: string }} [opts]
 * @returns {Promise<{ port: number, url: string, requests: any[], close: () => Promise<void> }>}
 */
export function startFakeUpstream({ port = 0, record, reply = REPLY_TEXT } = {}) {
  /** @type {any[]} */
  const requests = [];
  const server = http.createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (d) => (body += d));
    req.on("end", () => {
      /** @type {any} */
      let json;
      try {
        json = body ? JSON.parse(body) : undefined;
      } catch {
        json = undefined;
      }
      const path = (req.url ?? "/").split("?")[0];
      const entry = {
        time: new Date().toISOString(),
        method: req.method,
        path,
        model: json?.model,
        stream: json?.stream === true,
        authorization: req.headers.authorization ?? null,
      };
      requests.push(entry);
      if (record) fs.appendFileSync(record, `${JSON.stringify(entry)}\n`);

      if (req.method === "GET" && path === "/v1/models") {
        return send(res, 200, {
          object: "list",
          data: MODELS.map((id) => ({ id, object: "model", created: 0, owned_by: "fake" })),
        });
      }
      if (req.method === "POST" && path === "/v1/chat/completions") {
        if (!json || typeof json.model !== "string") {
          return send(res, 400, { error: { message: "expected a JSON body with model", type: "invalid_request_error" } });
        }
        const id = `chatcmpl-fake-${requests.length}`;
        const created = Math.floor(Date.now() / 1000);
        const usage = { prompt_tokens: 10, completion_tokens: 8, total_tokens: 18 };
        if (entry.stream) {
          res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive" });
          const chunk = (delta, finish = null, extra = {}) =>
            res.write(
              `data: ${JSON.stringify({ id, object: "chat.completion.chunk", created, model: json.model, choices: [{ index: 0, delta, finish_reason: finish }], ...extra })}\n\n`,
            );
          chunk({ role: "assistant", content: "" });
          const words = reply.split(/(?<= )/);
          for (const w of words) chunk({ content: w });
          chunk({}, "stop");
          if (json.stream_options?.include_usage) {
            res.write(`data: ${JSON.stringify({ id, object: "chat.completion.chunk", created, model: json.model, choices: [], usage })}\n\n`);
          }
          res.end("data: [DONE]\n\n");
          return;
        }
        return send(res, 200, {
          id,
          object: "chat.completion",
          created,
          model: json.model,
          choices: [{ index: 0, message: { role: "assistant", content: reply }, finish_reason: "stop" }],
          usage,
        });
      }
      send(res, 404, { error: { message: `no route ${req.method} ${path}`, type: "not_found" } });
    });
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => {
      const addr = /** @type {import("node:net").AddressInfo} */ (server.address());
      resolve({
        port: addr.port,
        url: `http://127.0.0.1:${addr.port}/v1`,
        requests,
        close: () =>
          new Promise((r) => {
            server.closeAllConnections?.();
            server.close(() => r(undefined));
          }),
      });
    });
  });
}

/**
 * @param {http.ServerResponse} res
 * @param {number} status
 * @param {unknown} obj
 */
function send(res, status, obj) {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(obj));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const up = await startFakeUpstream({
    port: Number(process.env.FAKE_UPSTREAM_PORT ?? 0),
    record: process.env.FAKE_UPSTREAM_RECORD,
  });
  process.stdout.write(`${JSON.stringify({ port: up.port, reply: REPLY_TEXT })}\n`);
  const stop = () => up.close().then(() => process.exit(0));
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}
