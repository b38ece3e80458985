#!/usr/bin/env node
// Talks to a running bitrouter-mcp over streamable HTTP with the adapter's own MCP client; for
// scripts/e2e.sh. Prints JSON on stdout; exits 1 (reason on stderr) on failure.
//
//   mcp-call.js <url> wait-healthy <seconds> [pid]
//                                              poll bitrouter_status until daemon.state == "healthy";
//                                              gives up at once when process <pid> (the server) exits
//   mcp-call.js <url> tool <name> [json-args]  a tool's structured result
//   mcp-call.js <url> resource <uri>           a resource's JSON

import { setTimeout as sleep } from "node:timers/promises";

import { McpHttpClient } from "../../src/mcp-client.js";

const [url, cmd, a, b] = process.argv.slice(2);
/** @param {number} pid */
const running = (pid) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return /** @type {any} */ (e).code === "EPERM";
  }
};
if (!url || !cmd) {
  process.stderr.write("usage: mcp-call.js <url> wait-healthy <seconds> | tool <name> [json] | resource <uri>\n");
  process.exit(2);
}
const client = new McpHttpClient({ url, eventStream: false, requestTimeoutMs: 10000 });

try {
  if (cmd === "wait-healthy") {
    const deadline = Date.now() + Number(a ?? 30) * 1000;
    let last = "bitrouter-mcp not answering";
    for (;;) {
      try {
        await client.connect();
        const status = await client.callTool("bitrouter_status", {});
        last = `daemon.state=${status?.daemon?.state} last_error=${status?.daemon?.last_error ?? ""}`;
        if (status?.daemon?.state === "healthy") {
          process.stdout.write(`${JSON.stringify(status)}\n`);
          break;
        }
      } catch (e) {
        last = e instanceof Error ? e.message : String(e);
      }
      if (b && !running(Number(b))) throw new Error(`the server (pid ${b}) exited: ${last}`);
      if (Date.now() > deadline) throw new Error(`not healthy within ${a} s: ${last}`);
      await sleep(100);
    }
  } else if (cmd === "tool") {
    await client.connect();
    process.stdout.write(`${JSON.stringify(await client.callTool(a, b ? JSON.parse(b) : {}))}\n`);
  } else if (cmd === "resource") {
    await client.connect();
    process.stdout.write(`${JSON.stringify(await client.readResourceJson(a))}\n`);
  } else {
    throw new Error(`unknown command ${cmd}`);
  }
} catch (e) {
  process.stderr.write(`mcp-call: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
} finally {
  await client.close().catch(() => {});
}
