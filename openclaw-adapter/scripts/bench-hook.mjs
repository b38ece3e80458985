#!/usr/bin/env node
// @ts-check
/**
 * Benchmark of the `before_model_resolve` decision: how long OpenClaw waits for the adapter to decide
 * whether a run goes through BitRouter. Plain Node (>= 20), no dependencies:
 *
 *     node openclaw-adapter/scripts/bench-hook.mjs
 *
 * The route cache is filled with a routes document of 50 virtual models (what `bitrouter://routes`
 * holds), then 1,000,000 decisions per scenario are timed in batches of 1,000; p50/p99/max are over the
 * per-batch ns/op. Two levels:
 *
 *   decideModelRoute   the decision itself (src/routing.js), called synchronously;
 *   hook               the handler index.js registers for `before_model_resolve`, awaited as OpenClaw
 *                      awaits it (async wrapper, the debug log line, the decision).
 *
 * While timing, fetch, sockets, child processes and file reads are trapped and counted: the decision
 * must be a pure lookup in the cache (no I/O), and the script says so if it was not.
 * Figures are printed, not asserted. Target from the issue: a decision within 0.1 ms (100,000 ns).
 */

import childProcess from "node:child_process";
import fs from "node:fs";
import { syncBuiltinESMExports } from "node:module";
import net from "node:net";
import os from "node:os";

import { register } from "../index.js";
import { RouteCache, decideModelRoute } from "../src/routing.js";

const VIRTUAL_MODELS = 50;
const BATCH = 1_000;
const BATCHES = 1_000; // x BATCH = 1,000,000 decisions per scenario
const WARMUP_DECISIONS = 200_000;
const TARGET_NS = 100_000;

/** A routes document as bitrouter-mcp serves it at `bitrouter://routes`. */
function routesDocument() {
  const providers = ["openai", "anthropic", "google"];
  return {
    models: Array.from({ length: VIRTUAL_MODELS }, (_, i) => ({
      name: `vm-${String(i).padStart(2, "0")}`,
      strategy: i % 2 ? "load_balance" : "priority",
      endpoints: [
        { provider: providers[i % 3], model_id: `model-${i}-a`, active: true },
        { provider: providers[(i + 1) % 3], model_id: `model-${i}-b`, active: false },
      ],
    })),
    direct_providers: providers,
    intercept_all_models: false,
    daemon_healthy: true,
    updated_at: new Date().toISOString(),
  };
}

// ---------------------------------------------------------------------------------------------
// I/O traps: anything the decision does besides reading memory shows up here.

const io = { count: 0, what: new Set(), armed: false };
/**
 * @param {any} obj
 * @param {string} name
 * @param {string} label
 */
function trap(obj, name, label) {
  const original = obj[name];
  if (typeof original !== "function") return;
  obj[name] = function (/** @type {any[]} */ ...args) {
    if (io.armed) {
      io.count++;
      io.what.add(label);
    }
    return original.apply(this, args);
  };
}
trap(globalThis, "fetch", "fetch");
trap(net.Socket.prototype, "connect", "net.Socket#connect");
trap(net, "createConnection", "net.createConnection");
for (const f of ["spawn", "spawnSync", "exec", "execFile", "execFileSync", "fork"]) trap(childProcess, f, `child_process.${f}`);
for (const f of ["readFileSync", "readFile", "statSync", "stat", "existsSync", "openSync", "open", "readdirSync", "readdir", "writeFileSync", "writeFile"]) {
  trap(fs, f, `fs.${f}`);
}
trap(fs.promises, "readFile", "fs.promises.readFile");
trap(fs.promises, "stat", "fs.promises.stat");
syncBuiltinESMExports();

// ---------------------------------------------------------------------------------------------
// Timing

/**
 * @param {number[]} v sorted ascending
 * @param {number} q
 */
const pct = (v, q) => v[Math.min(v.length - 1, Math.max(0, Math.ceil(q * v.length) - 1))];

let sink = 0;

/**
 * Times `BATCHES` batches of `BATCH` synchronous calls of `fn(requests[i])`.
 * @param {(r: any) => unknown} fn
 * @param {any[]} requests
 */
function timeSync(fn, requests) {
  const n = requests.length;
  for (let i = 0; i < WARMUP_DECISIONS; i++) sink ^= fn(requests[i % n]) ? 1 : 0;
  const perBatch = new Array(BATCHES);
  let k = 0;
  io.armed = true;
  for (let b = 0; b < BATCHES; b++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < BATCH; i++) {
      sink ^= fn(requests[k]) ? 1 : 0;
      k = k + 1 === n ? 0 : k + 1;
    }
    perBatch[b] = Number(process.hrtime.bigint() - t0) / BATCH;
  }
  io.armed = false;
  return perBatch.sort((a, b) => a - b);
}

/**
 * Like timeSync, awaiting each call.
 * @param {(r: any) => Promise<unknown>} fn
 * @param {any[]} requests
 */
async function timeAsync(fn, requests) {
  const n = requests.length;
  for (let i = 0; i < WARMUP_DECISIONS; i++) sink ^= (await fn(requests[i % n])) ? 1 : 0;
  const perBatch = new Array(BATCHES);
  let k = 0;
  io.armed = true;
  for (let b = 0; b < BATCHES; b++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < BATCH; i++) {
      sink ^= (await fn(requests[k])) ? 1 : 0;
      k = k + 1 === n ? 0 : k + 1;
    }
    perBatch[b] = Number(process.hrtime.bigint() - t0) / BATCH;
  }
  io.armed = false;
  return perBatch.sort((a, b) => a - b);
}

/**
 * @param {string} label
 * @param {number[]} sorted per-batch ns/op
 */
function report(label, sorted) {
  const p50 = pct(sorted, 0.5);
  const p99 = pct(sorted, 0.99);
  const max = sorted[sorted.length - 1];
  const verdict = p99 <= TARGET_NS ? "within 0.1 ms" : `MISSED 0.1 ms by ${(p99 / TARGET_NS).toFixed(1)}x`;
  console.log(
    `  ${label.padEnd(52)} p50 ${p50.toFixed(1).padStart(7)} ns/op  p99 ${p99.toFixed(1).padStart(7)} ns/op  max batch ${max.toFixed(0).padStart(6)} ns/op  (${verdict})`,
  );
}

// ---------------------------------------------------------------------------------------------
// Scenarios

const doc = routesDocument();
const names = doc.models.map((m) => m.name);
const providers = ["openai", "anthropic", "google", "ollama"];

/** @type {Record<string, { requests: {providerId: string, modelId: string}[], intercept: boolean, expect: (d: any, r: any) => boolean }>} */
const scenarios = {
  "routed virtual model (selective)": {
    requests: names.map((modelId, i) => ({ providerId: providers[i % 3], modelId })),
    intercept: false,
    expect: (d, r) => d?.providerOverride === "bitrouter" && d.modelOverride === r.modelId,
  },
  "unrouted model passes through (selective)": {
    requests: names.map((_, i) => ({ providerId: providers[i % 4], modelId: `gpt-4o-${i}` })),
    intercept: false,
    expect: (d) => d === undefined,
  },
  "unrouted model, interceptAllModels": {
    requests: names.map((_, i) => ({ providerId: providers[i % 4], modelId: `gpt-4o-${i}` })),
    intercept: true,
    expect: (d, r) =>
      d?.providerOverride === "bitrouter" && d.modelOverride === (r.providerId === "ollama" ? r.modelId : `${r.providerId}:${r.modelId}`),
  },
  "direct provider:model_id (selective)": {
    requests: names.map((_, i) => ({ providerId: "openai", modelId: `${providers[i % 3]}:model-${i}` })),
    intercept: false,
    expect: (d, r) => d?.providerOverride === "bitrouter" && d.modelOverride === r.modelId,
  },
};

/** The registered hook handler over a filled cache, as OpenClaw calls it. */
function registeredHook(intercept) {
  /** @type {Map<string, Function>} */
  const hooks = new Map();
  const noop = () => {};
  const api = {
    id: "bitrouter",
    pluginConfig: { interceptAllModels: intercept },
    config: { plugins: { entries: { bitrouter: { config: { interceptAllModels: intercept } } } } },
    logger: { debug: noop, info: noop, warn: noop, error: noop },
    runtime: { state: { resolveStateDir: () => os.tmpdir() } },
    registerProvider: noop,
    registerService: noop,
    registerTool: noop,
    registerGatewayMethod: noop,
    on: (/** @type {string} */ name, /** @type {Function} */ handler) => hooks.set(name, handler),
  };
  const runtime = register(api);
  // As after the service's first refresh: the cache is filled, no warm-up fetch on the hot path.
  runtime.serviceStarted = true;
  runtime.cache.update(structuredClone(doc));
  const hook = hooks.get("before_model_resolve");
  if (!hook) throw new Error("before_model_resolve not registered");
  return /** @type {(event: unknown, ctx: unknown) => Promise<unknown>} */ (hook);
}

console.log(
  `OpenClaw adapter before_model_resolve decision, ${VIRTUAL_MODELS} virtual models cached, ` +
    `${(BATCH * BATCHES).toLocaleString("en-US")} decisions per scenario in batches of ${BATCH} ` +
    `(node ${process.version}, ${os.cpus().length} cores)`,
);

const cache = new RouteCache();
cache.update(structuredClone(doc));

console.log("decideModelRoute (src/routing.js), synchronous");
for (const [label, s] of Object.entries(scenarios)) {
  const opts = { interceptAllModels: s.intercept };
  for (const r of s.requests) {
    const d = decideModelRoute(r, cache, opts);
    if (/** @type {any} */ (d) instanceof Promise) throw new Error("decideModelRoute returned a promise: not a pure lookup");
    if (!s.expect(d, r)) throw new Error(`${label}: unexpected decision ${JSON.stringify(d)} for ${JSON.stringify(r)}`);
  }
  report(label, timeSync((r) => decideModelRoute(r, cache, opts), s.requests));
}

console.log("registered before_model_resolve handler (index.js), awaited");
for (const [label, s] of Object.entries(scenarios)) {
  const hook = registeredHook(s.intercept);
  const ctxs = s.requests.map((r) => ({ modelProviderId: r.providerId, modelId: r.modelId, agentId: "main" }));
  const event = { prompt: "hi" };
  for (let i = 0; i < ctxs.length; i++) {
    const d = await hook(event, ctxs[i]);
    if (!s.expect(d, s.requests[i])) throw new Error(`${label}: unexpected hook decision ${JSON.stringify(d)}`);
  }
  report(label, await timeAsync((ctx) => hook(event, ctx), ctxs));
}

console.log(
  io.count === 0
    ? "I/O during the timed decisions: none (no fetch, socket, child process or file access): a pure cache lookup"
    : `I/O during the timed decisions: ${io.count} calls (${[...io.what].join(", ")}): NOT a pure cache lookup`,
);
if (sink === 42) console.log(""); // keeps the results observable
