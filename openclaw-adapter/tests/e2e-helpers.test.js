// The helpers scripts/e2e.sh relies on, checked here so a broken helper shows up in `node --test`
// rather than as a puzzling end-to-end failure: the fake upstream (both response shapes, the request
// record) and mcp-call.js against the rmcp-shaped fake server.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

import { REPLY_TEXT, startFakeUpstream } from "./helpers/fake-openai-upstream.js";
import { startFakeMcpServer } from "./helpers/fake-mcp-server.js";
import { tempDir } from "./helpers/fakes.js";

const run = promisify(execFile);
const helpers = path.join(path.dirname(fileURLToPath(import.meta.url)), "helpers");

describe("fake OpenAI-compatible upstream", async () => {
  const record = path.join(tempDir(), "requests.jsonl");
  const up = await startFakeUpstream({ record });
  after(() => up.close());
  const post = (body, auth = "Bearer k1") =>
    fetch(`${up.url}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: auth },
      body: JSON.stringify(body),
    });

  it("answers a plain JSON completion", async () => {
    const res = await post({ model: "fake-model-1", messages: [{ role: "user", content: "hi" }] });
    assert.equal(res.status, 200);
    const d = await res.json();
    assert.equal(d.object, "chat.completion");
    assert.equal(d.model, "fake-model-1");
    assert.equal(d.choices[0].message.content, REPLY_TEXT);
    assert.equal(d.choices[0].finish_reason, "stop");
  });

  it("streams SSE chunks that add up to the reply, with usage and [DONE]", async () => {
    const res = await post({ model: "m", stream: true, stream_options: { include_usage: true }, messages: [] });
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type"), /text\/event-stream/);
    const events = (await res.text()).split("\n\n").filter(Boolean).map((e) => e.replace(/^data: /, ""));
    assert.equal(events.at(-1), "[DONE]");
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
    assert.equal(chunks.map((c) => c.choices[0]?.delta?.content ?? "").join(""), REPLY_TEXT);
    assert.ok(chunks.some((c) => c.choices[0]?.finish_reason === "stop"));
    assert.deepEqual(chunks.at(-1).choices, []);
    assert.equal(chunks.at(-1).usage.total_tokens, 18);
  });

  it("lists its model and refuses what it does not serve", async () => {
    const models = await (await fetch(`${up.url}/models`)).json();
    assert.deepEqual(models.data.map((m) => m.id), ["fake-model-1"]);
    assert.equal((await fetch(`${up.url}/embeddings`, { method: "POST", body: "{}" })).status, 404);
    assert.equal((await post("not an object")).status, 400);
  });

  it("records every request's model and Authorization, in memory and to the file", async () => {
    await post({ model: "recorded-model", messages: [] }, "Bearer provider-key");
    const last = up.requests.at(-1);
    assert.deepEqual(
      { method: last.method, path: last.path, model: last.model, authorization: last.authorization, stream: last.stream },
      { method: "POST", path: "/v1/chat/completions", model: "recorded-model", authorization: "Bearer provider-key", stream: false },
    );
    const lines = fs.readFileSync(record, "utf8").trim().split("\n").map((l) => JSON.parse(l));
    assert.equal(lines.length, up.requests.length);
    assert.equal(lines.at(-1).authorization, "Bearer provider-key");
  });

  it("runs as a program: listens on a free port and prints it with the reply text", async () => {
    const { spawn } = await import("node:child_process");
    const child = spawn(process.execPath, [path.join(helpers, "fake-openai-upstream.js")], {
      env: { ...process.env, FAKE_UPSTREAM_PORT: "0" },
      stdio: ["ignore", "pipe", "inherit"],
    });
    try {
      const line = await new Promise((resolve) => child.stdout.once("data", (d) => resolve(String(d))));
      const { port, reply } = JSON.parse(line);
      assert.equal(reply, REPLY_TEXT);
      assert.equal((await fetch(`http://127.0.0.1:${port}/v1/models`)).status, 200);
    } finally {
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await exited;
    }
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
