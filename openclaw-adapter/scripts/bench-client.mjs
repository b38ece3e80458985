#!/usr/bin/env node
// @ts-check
/**
 * Benchmark of the adapter's MCP client start: what a gateway start (or an `agent --local` warm-up)
 * pays before its first answer from bitrouter-mcp. Each run is a fresh Node process, as each OpenClaw
 * process is, that:
 *
 *   import   loads the client module (src/mcp-client.js, or the module given with --module);
 *   first    connects (initialize + notifications/initialized) and gets its first bitrouter_status.
 *
 *     node openclaw-adapter/scripts/bench-client.mjs <mcp url> [--runs N] [--module path]
 *
 * Needs a running `bitrouter-mcp serve --http`. Figures (median, min, max over the runs) are printed,
 * not asserted; ARCHITECTURE.md records them.
 */

import { execFileSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const args = process.argv.slice(2);
const opt = (/** @type {string} */ name, /** @type {string} */ dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const url = args.find((a) => a.startsWith("http"));
const here = path.dirname(fileURLToPath(import.meta.url));
const modulePath = path.resolve(opt("--module", path.join(here, "..", "src", "mcp-client.js")));

if (process.env.BENCH_CLIENT_CHILD) {
  const t0 = performance.now();
  const { McpHttpClient } = await import(pathToFileURL(modulePath).href);
  const t1 = performance.now();
  const client = new McpHttpClient({ url, eventStream: false });
  await client.connect();
  const status = await client.callTool("bitrouter_status", {});
  const t2 = performance.now();
  await client.close();
  if (typeof status !== "object" || status === null) throw new Error("bitrouter_status returned no object");
  process.stdout.write(JSON.stringify({ importMs: t1 - t0, firstCallMs: t2 - t1 }));
} else {
  if (!url) {
    process.stderr.write("usage: bench-client.mjs <mcp url> [--runs N] [--module path]\n");
    process.exit(2);
  }
  const runs = Number(opt("--runs", "15"));
  /** @type {{importMs: number, firstCallMs: number, wallMs: number}[]} */
  const results = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const out = execFileSync(process.execPath, [fileURLToPath(import.meta.url), url, "--module", modulePath], {
      env: { ...process.env, BENCH_CLIENT_CHILD: "1" },
      encoding: "utf8",
    });
    results.push({ ...JSON.parse(out), wallMs: performance.now() - t0 });
  }
  const stat = (/** @type {number[]} */ xs) => {
    const s = [...xs].sort((a, b) => a - b);
    return `median ${s[Math.floor(s.length / 2)].toFixed(1)} ms (min ${s[0].toFixed(1)}, max ${s.at(-1)?.toFixed(1)})`;
  };
  console.log(`client module: ${path.relative(process.cwd(), modulePath)}; Node ${process.version}; ${runs} fresh processes`);
  console.log(`  import                      ${stat(results.map((r) => r.importMs))}`);
  console.log(`  connect + first callTool    ${stat(results.map((r) => r.firstCallMs))}`);
  console.log(`  import + first callTool     ${stat(results.map((r) => r.importMs + r.firstCallMs))}`);
  console.log(`  whole process               ${stat(results.map((r) => r.wallMs))}`);
}
