#!/usr/bin/env node
// A minimal MCP client over stdio for the npm install test: spawns the command it is given (e.g.
// `npx -y bitrouter-supervisor-mcp serve --stdio`), initializes, lists the tools, polls bitrouter_status
// until the daemon is healthy, then closes stdin (which must stop the server and its daemon) and prints
// one JSON object: { tools, status, firstAnswerMs, healthyMs, shutdownMs, exit: {code, signal}, daemonGone, stderr }.
// Usage: stdio-client.mjs TIMEOUT_SECONDS COMMAND [ARGS...]
import { spawn } from "node:child_process";

const [timeoutS, cmd, ...args] = process.argv.slice(2);
const deadline = Date.now() + Number(timeoutS) * 1000;
const t0 = Date.now();
const child = spawn(cmd, args, { stdio: ["pipe", "pipe", "pipe"] });
let stderr = "";
child.stderr.on("data", (d) => {
  stderr = (stderr + d).slice(-4000);
});
const exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));

const pending = new Map();
let buf = "";
child.stdout.on("data", (d) => {
  buf += d;
  let i;
  while ((i = buf.indexOf("\n")) >= 0) {
    const line = buf.slice(0, i).trim();
    buf = buf.slice(i + 1);
    if (!line) continue;
    let msg;
    try {
      msg = JSON.parse(line);
    } catch {
      fail(`stdout carried a line that is not JSON-RPC: ${line.slice(0, 200)}`);
    }
    if (msg.id !== undefined && pending.has(msg.id)) {
      pending.get(msg.id)(msg);
      pending.delete(msg.id);
    }
  }
});

let nextId = 1;
function request(method, params) {
  const id = nextId++;
  child.stdin.write(`${JSON.stringify({ jsonrpc: "2.0", id, method, params })}\n`);
  return new Promise((resolve, reject) => {
    pending.set(id, (m) => (m.error ? reject(new Error(`${method}: ${JSON.stringify(m.error)}`)) : resolve(m.result)));
    const left = deadline - Date.now();
    setTimeout(() => reject(new Error(`${method}: no answer within ${timeoutS} s`)), Math.max(left, 1)).unref();
  });
}
function fail(message) {
  process.stdout.write(`${JSON.stringify({ error: message, stderr })}\n`);
  child.kill("SIGKILL");
  process.exit(1);
}
const alive = (pid) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

try {
  await request("initialize", { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "npm-e2e", version: "1" } });
  child.stdin.write(`${JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" })}\n`);
  const { tools } = await request("tools/list", {});
  const firstAnswerMs = Date.now() - t0;
  let status;
  for (;;) {
    status = (await request("tools/call", { name: "bitrouter_status", arguments: {} })).structuredContent;
    if (status?.daemon?.state === "healthy" || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  const healthyMs = Date.now() - t0;
  child.stdin.end();
  const closedAt = Date.now();
  const exit = await Promise.race([exited, new Promise((r) => setTimeout(() => r({ timeout: true }), 15000).unref())]);
  const pid = status?.daemon?.pid;
  let daemonGone = pid ? !alive(pid) : null;
  for (let i = 0; pid && !daemonGone && i < 50; i++) {
    await new Promise((r) => setTimeout(r, 100));
    daemonGone = !alive(pid);
  }
  const shutdownMs = Date.now() - closedAt;
  process.stdout.write(`${JSON.stringify({ tools: tools.map((t) => t.name), status, firstAnswerMs, healthyMs, shutdownMs, exit, daemonGone, stderr })}\n`);
  if (exit.timeout) child.kill("SIGKILL");
} catch (e) {
  fail(e instanceof Error ? e.message : String(e));
}
