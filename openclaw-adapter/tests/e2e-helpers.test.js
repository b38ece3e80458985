// The helpers scripts/e2e.sh relies on, checked here so a broken helper shows up in `node --test`
// rather than as a puzzling end-to-end failure: the fake upstream (both protocols' shapes over HTTPS from
// the test CA, failure modes, the request record), the test CA, and mcp-call.js against the rmcp-shaped
// fake server.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import fs from "node:fs";
import https from "node:https";
import path from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { setTimeout as sleep } from "node:timers/promises";

import { REPLY_TEXT, startFakeUpstream } from "./helpers/fake-upstream.js";
import { startFakeMcpServer } from "./helpers/fake-mcp-server.js";
import { tempDir } from "./helpers/fakes.js";
import { makeTestCa } from "./helpers/make-test-ca.js";

const run = promisify(execFile);
const helpers = path.join(path.dirname(fileURLToPath(import.meta.url)), "helpers");

/** An HTTPS request trusting only `ca`; resolves { status, headers, text }. */
function httpsRequest(url, { method = "GET", headers = {}, body, ca }) {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method, headers, ca, agent: false }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d) => (text += d));
      res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, text }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

const ca = makeTestCa(tempDir());
const tls = { cert: fs.readFileSync(ca.cert), key: fs.readFileSync(ca.key) };
const caPem = fs.readFileSync(ca.ca);

describe("fake OpenAI upstream (HTTPS from the test CA)", async () => {
  const record = path.join(tempDir(), "requests.jsonl");
  const up = await startFakeUpstream({ record, tls, key: "k1" });
  after(() => up.close());
  const post = (body, auth = "Bearer k1") =>
    httpsRequest(`${up.url}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: auth },
      body: JSON.stringify(body),
      ca: caPem,
    });

  it("serves a certificate the test CA verifies, for 127.0.0.1", async () => {
    assert.match(up.url, /^https:\/\/127\.0\.0\.1:\d+\/v1$/);
    await assert.rejects(httpsRequest(`${up.url}/models`, { ca: undefined }), /self[- ]signed|unable to (get|verify)/i);
  });

  it("answers a plain JSON completion with usage", async () => {
    const res = await post({ model: "fake-model-1", messages: [{ role: "user", content: "hi" }] });
    assert.equal(res.status, 200);
    const d = JSON.parse(res.text);
    assert.equal(d.object, "chat.completion");
    assert.equal(d.model, "fake-model-1");
    assert.equal(d.choices[0].message.content, REPLY_TEXT);
    assert.equal(d.choices[0].finish_reason, "stop");
    assert.ok(d.usage.prompt_tokens > 0 && d.usage.total_tokens === d.usage.prompt_tokens + d.usage.completion_tokens);
  });

  it("streams SSE chunks that add up to the reply, with usage and [DONE]", async () => {
    const res = await post({ model: "m", stream: true, stream_options: { include_usage: true }, messages: [] });
    assert.equal(res.status, 200);
    assert.match(res.headers["content-type"], /text\/event-stream/);
    const events = res.text.split("\n\n").filter(Boolean).map((e) => e.replace(/^data: /, ""));
    assert.equal(events.at(-1), "[DONE]");
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
    assert.equal(chunks.map((c) => c.choices[0]?.delta?.content ?? "").join(""), REPLY_TEXT);
    assert.ok(chunks.some((c) => c.choices[0]?.finish_reason === "stop"));
    assert.deepEqual(chunks.at(-1).choices, []);
    assert.ok(chunks.at(-1).usage.total_tokens > 0);
  });

  it("lists models with the key, refuses a missing or wrong key and what it does not serve", async () => {
    const models = await httpsRequest(`${up.url}/models`, { headers: { authorization: "Bearer k1" }, ca: caPem });
    assert.ok(JSON.parse(models.text).data.some((m) => m.id === "fake-model-1"));
    assert.equal((await httpsRequest(`${up.url}/models`, { ca: caPem })).status, 401);
    assert.equal((await post({ model: "m", messages: [] }, "Bearer wrong")).status, 401);
    assert.equal((await httpsRequest(`${up.url}/embeddings`, { method: "POST", body: "{}", headers: { authorization: "Bearer k1" }, ca: caPem })).status, 404);
    assert.equal((await post("not an object")).status, 400);
  });

  it("records every request's model, credential and answer, in memory and to the file", async () => {
    await post({ model: "recorded-model", messages: [] });
    const last = up.requests.at(-1);
    assert.deepEqual(
      { kind: last.kind, method: last.method, path: last.path, model: last.model, authorization: last.authorization, credential: last.credential, stream: last.stream, status: last.status },
      { kind: "chat", method: "POST", path: "/v1/chat/completions", model: "recorded-model", authorization: "Bearer k1", credential: "k1", stream: false, status: 200 },
    );
    const lines = fs.readFileSync(record, "utf8").trim().split("\n").map((l) => JSON.parse(l));
    assert.equal(lines.length, up.requests.length);
    assert.equal(lines.at(-1).credential, "k1");
  });

  it("fails chat only, then everything, then refuses connections, and heals", async () => {
    await up.setMode({ mode: "chat-fail" });
    assert.equal((await post({ model: "m", messages: [] })).status, 503);
    assert.equal((await httpsRequest(`${up.url}/models`, { headers: { authorization: "Bearer k1" }, ca: caPem })).status, 200);
    await up.setMode({ mode: "fail500" });
    assert.equal((await httpsRequest(`${up.url}/models`, { headers: { authorization: "Bearer k1" }, ca: caPem })).status, 500);
    await up.setMode({ mode: "refuse" });
    await assert.rejects(post({ model: "m", messages: [] }), /ECONNREFUSED/);
    await up.setMode({ mode: "ok" });
    assert.equal((await post({ model: "m", messages: [] })).status, 200);
  });

  it("decides a delayed answer after the delay, so a failure can land on a request in flight", async () => {
    await up.setMode({ mode: "ok", delayMs: 300 });
    const inflight = post({ model: "m", messages: [] });
    await sleep(100);
    await up.setMode({ mode: "overloaded" });
    assert.equal((await inflight).status, 503);
    await up.setMode({ mode: "ok", delayMs: 0 });
  });

  it("runs as a program: HTTPS on a free port, mode switched through a file", async () => {
    const { spawn } = await import("node:child_process");
    const modeFile = path.join(tempDir(), "mode.json");
    const child = spawn(process.execPath, [path.join(helpers, "fake-upstream.js")], {
      env: { ...process.env, FAKE_UPSTREAM_PORT: "0", FAKE_UPSTREAM_TLS_CERT: ca.cert, FAKE_UPSTREAM_TLS_KEY: ca.key, FAKE_UPSTREAM_MODE_FILE: modeFile },
      stdio: ["ignore", "pipe", "inherit"],
    });
    try {
      const line = await new Promise((resolve) => child.stdout.once("data", (d) => resolve(String(d))));
      const { port, reply, url } = JSON.parse(line);
      assert.equal(reply, REPLY_TEXT);
      assert.equal(url, `https://127.0.0.1:${port}/v1`);
      const list = () => httpsRequest(`${url}/models`, { headers: { authorization: "Bearer any" }, ca: caPem });
      assert.equal((await list()).status, 200);
      fs.writeFileSync(modeFile, JSON.stringify({ mode: "fail500" }));
      await sleep(200);
      assert.equal((await list()).status, 500);
    } finally {
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await exited;
    }
  });
});

describe("fake Anthropic upstream", async () => {
  const up = await startFakeUpstream({ protocol: "anthropic", tls, key: "sk-ant" });
  after(() => up.close());
  const messages = (body, headers = { "x-api-key": "sk-ant", "anthropic-version": "2023-06-01" }) =>
    httpsRequest(`${up.url}/v1/messages`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body), ca: caPem });

  it("answers messages in Anthropic's shape and streams its events", async () => {
    const res = await messages({ model: "claude-sonnet-4-20250514", max_tokens: 64, messages: [{ role: "user", content: "hi" }] });
    assert.equal(res.status, 200);
    const d = JSON.parse(res.text);
    assert.equal(d.type, "message");
    assert.equal(d.content[0].text, REPLY_TEXT);
    assert.ok(d.usage.input_tokens > 0 && d.usage.output_tokens > 0);
    const s = await messages({ model: "c", max_tokens: 64, stream: true, messages: [] });
    const types = [...s.text.matchAll(/^event: (\S+)$/gm)].map((m) => m[1]);
    assert.deepEqual(
      [...new Set(types)],
      ["message_start", "content_block_start", "ping", "content_block_delta", "content_block_stop", "message_delta", "message_stop"],
    );
  });

  it("requires x-api-key, anthropic-version and max_tokens, and overloads with 529", async () => {
    assert.equal((await messages({ model: "c", max_tokens: 1, messages: [] }, { "anthropic-version": "2023-06-01" })).status, 401);
    assert.equal((await messages({ model: "c", max_tokens: 1, messages: [] }, { "x-api-key": "sk-ant" })).status, 400);
    assert.equal((await messages({ model: "c", messages: [] })).status, 400);
    await up.setMode({ mode: "chat-fail" });
    const r = await messages({ model: "c", max_tokens: 1, messages: [] });
    assert.equal(r.status, 529);
    assert.deepEqual(JSON.parse(r.text), { type: "error", error: { type: "overloaded_error", message: "Overloaded" } });
    const list = await httpsRequest(`${up.url}/v1/models`, { headers: { "x-api-key": "sk-ant", "anthropic-version": "2023-06-01" }, ca: caPem });
    assert.equal(list.status, 200, "the listing still answers");
    await up.setMode({ mode: "ok" });
  });
});

describe("mcp-call.js", async () => {
  const server = await startFakeMcpServer({ port: 0 });
  after(() => server.close());
  const call = (...args) => run(process.execPath, [path.join(helpers, "mcp-call.js"), server.url, ...args]);

  it("reads a resource and calls a tool", async () => {
    const routes = JSON.parse((await call("resource", "bitrouter://routes")).stdout);
    assert.ok(routes.models.some((m) => m.name === "smart"));
    const status = JSON.parse((await call("tool", "bitrouter_status", "{}")).stdout);
    assert.equal(typeof status.daemon, "object");
  });

  it("wait-healthy returns the status once the daemon is healthy", async () => {
    const status = JSON.parse((await call("wait-healthy", "5", String(process.pid))).stdout);
    assert.equal(status.daemon.state, "healthy");
  });

  it("wait-healthy gives up at once when the server process is gone", async () => {
    const t0 = Date.now();
    await assert.rejects(
      run(process.execPath, [path.join(helpers, "mcp-call.js"), "http://127.0.0.1:9/mcp", "wait-healthy", "30", "999999999"]),
      (e) => /exited/.test(e.stderr),
    );
    assert.ok(Date.now() - t0 < 10000);
  });
});
