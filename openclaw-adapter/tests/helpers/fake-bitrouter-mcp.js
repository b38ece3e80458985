#!/usr/bin/env node
// A stand-in `bitrouter-mcp` executable for checks inside a real OpenClaw when the Rust binary is not
// built: accepts the two command lines the plugin uses and serves the fake MCP endpoint.
//
//   fake-bitrouter-mcp.js serve --http 127.0.0.1:<port> --config <file> [--data-dir <dir>]
//   fake-bitrouter-mcp.js auth login --data-dir <dir> --stdin      (appends stdin to <dir>/.env)
//
// With FAKE_BITROUTER_RECORD=<file>, `serve` writes its argv and parsed config there, and appends
// "SIGTERM" to <file>.events when it is asked to stop.

import fs from "node:fs";
import path from "node:path";

import { startFakeMcpServer } from "./fake-mcp-server.js";

const argv = process.argv.slice(2);
const opt = (name) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
const record = process.env.FAKE_BITROUTER_RECORD;

if (argv[0] === "serve") {
  const [host, port] = (opt("--http") ?? "").split(":");
  if (host !== "127.0.0.1" || !port) {
    process.stderr.write("usage: serve --http 127.0.0.1:<port> --config <file>\n");
    process.exit(2);
  }
  const cfg = JSON.parse(fs.readFileSync(opt("--config"), "utf8"));
  const routes = {
    models: Object.entries(cfg.models ?? {}).map(([name, m]) => ({
      name,
      strategy: m.strategy ?? "priority",
      endpoints: (m.endpoints ?? []).map((e) => ({ provider: e.provider, model_id: e.modelId, active: true })),
    })),
    direct_providers: ["openai", "anthropic", "google"],
    intercept_all_models: Boolean(cfg.interceptAllModels),
    daemon_healthy: true,
    updated_at: new Date().toISOString(),
  };
  if (record) fs.writeFileSync(record, JSON.stringify({ argv, config: cfg, pid: process.pid }));
  const server = await startFakeMcpServer({ port: Number(port), routes });
  process.stderr.write(`fake bitrouter-mcp serving ${server.url}\n`);
  process.on("SIGTERM", async () => {
    if (record) fs.appendFileSync(`${record}.events`, "SIGTERM\n");
    await server.close();
    process.exit(0);
  });
} else if (argv[0] === "auth" && argv[1] === "login" && argv.includes("--stdin")) {
  const dir = opt("--data-dir");
  let input = "";
  process.stdin.on("data", (d) => (input += d));
  process.stdin.on("end", () => {
    fs.mkdirSync(dir, { recursive: true });
    fs.appendFileSync(path.join(dir, ".env"), input, { mode: 0o600 });
    process.stdout.write(`saved ${input.split("\n").filter(Boolean).length} key(s)\n`);
  });
} else {
  process.stderr.write(`fake bitrouter-mcp: unsupported arguments: ${argv.join(" ")}\n`);
  process.exit(2);
}
