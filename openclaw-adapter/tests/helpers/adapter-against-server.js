#!/usr/bin/env node
// Runs the adapter's service twice, in one process, against a running bitrouter-mcp (autoStart off),
// the way two successive gateway starts would: each start must mint and save OpenClaw's token (the
// second one meets the first's saved "openclaw" token) and load the routes. For scripts/e2e.sh.
//
//   adapter-against-server.js <mcpPort> <daemonPort> <virtual model>
//
// Prints {runs: [{token, savedTo, decision, warnings, errors}], keys} on stdout.

import { register } from "../../index.js";
import { _resetMintedTokens } from "../../src/runtime.js";
import { fakeApi } from "./fakes.js";

const [mcpPort, daemonPort, model] = process.argv.slice(2);
const pluginConfig = { autoStart: false, mcpPort: Number(mcpPort), port: Number(daemonPort) };
const runs = [];
for (let i = 0; i < 2; i++) {
  _resetMintedTokens(); // a new gateway process
  const env = {};
  const { api, reg, stateDir, logText } = fakeApi({ pluginConfig });
  const runtime = register(api, { env });
  const ctx = { config: api.config, stateDir, logger: api.logger };
  await reg.services[0].start(ctx);
  const hook = reg.hooks.get("before_model_resolve");
  const decision = await hook({ prompt: "hi" }, { modelProviderId: "openai", modelId: model });
  await reg.services[0].stop(ctx);
  runs.push({
    token: typeof env.BITROUTER_API_KEY === "string" && env.BITROUTER_API_KEY.split(".").length === 3,
    savedTo: /saved to (\S+)/.exec(logText("info"))?.[1] ?? null,
    decision: decision ?? null,
    warnings: logText("warn"),
    errors: logText("error"),
  });
  void runtime;
}
const { McpHttpClient } = await import("../../src/mcp-client.js");
const client = new McpHttpClient({ url: `http://127.0.0.1:${mcpPort}/mcp`, eventStream: false });
await client.connect();
const keys = await client.callTool("bitrouter_keys", { action: "list" });
await client.close();
process.stdout.write(`${JSON.stringify({ runs, keys })}\n`);
