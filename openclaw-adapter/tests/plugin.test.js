// What a user notices of the plugin inside OpenClaw, with a fake plugin API, a fake bitrouter-mcp behind
// the MCP client interface, and a fake spawn: the hook's routing decisions, the provider catalog, the
// service's process handling, the minted credential and the gateway methods.

import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { afterEach, beforeEach, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";

import entry, { register } from "../index.js";
import { _resetMintedTokens } from "../src/runtime.js";
import { SAMPLE_ROUTES } from "./helpers/fake-mcp-server.js";
import { FakeBitrouter, callGateway, fakeApi, fakeSpawn, toolError, waitFor } from "./helpers/fakes.js";

/** The token allowlist for the fixture config: its virtual models plus direct routing. */
const SELECTIVE_MODELS = ["fast", "smart", "*:*"];

const SEED_EXAMPLE = {
  port: 8787,
  host: "127.0.0.1",
  models: {
    fast: {
      strategy: "load_balance",
      endpoints: [
        { provider: "openai", modelId: "gpt-4o-mini" },
        { provider: "anthropic", modelId: "claude-3.5-haiku" },
      ],
    },
    smart: {
      strategy: "priority",
      endpoints: [
        { provider: "anthropic", modelId: "claude-sonnet-4-20250514" },
        { provider: "openai", modelId: "gpt-4o" },
      ],
    },
  },
};

const found = (p = "/opt/bin/bitrouter-mcp") => () => ({ ok: true, path: p, source: "PATH" });

/**
 * Registers the plugin against fakes. Returns everything a test needs.
 * @param {object} [o]
 */
function setup({ pluginConfig = SEED_EXAMPLE, routes = SAMPLE_ROUTES, up = false, resolveBinary = found(), env = {}, spawnOpts, bitrouter } = {}) {
  const server = new FakeBitrouter({ routes, up, ...bitrouter });
  const { spawn, spawned } = fakeSpawn({
    onSpawn: () => {
      server.up = true;
    },
    ...spawnOpts,
  });
  const fake = fakeApi({ pluginConfig });
  const runtime = register(fake.api, {
    spawn,
    createClient: server.createClient,
    resolveBinary,
    env,
    pollMs: 1,
    startupTimeoutMs: 200,
    stopTimeoutMs: 50,
    restartDelayMs: 10,
  });
  const hook = fake.reg.hooks.get("before_model_resolve");
  const service = fake.reg.services[0];
  const provider = fake.reg.providers[0];
  const serviceCtx = { config: fake.api.config, stateDir: fake.stateDir, logger: fake.api.logger };
  return { ...fake, server, spawn, spawned, runtime, hook, service, provider, serviceCtx, env };
}

const ask = (hook, modelProviderId, modelId) => hook({ prompt: "hi" }, { modelProviderId, modelId, agentId: "main" });

let running = [];
beforeEach(() => {
  _resetMintedTokens();
  running = [];
});
afterEach(async () => {
  for (const t of running) await t.service.stop(t.serviceCtx);
});

/** setup() + service start, stopped after the test. */
async function started(o) {
  const t = setup(o);
  running.push(t);
  await t.service.start(t.serviceCtx);
  return t;
}

describe("registration", () => {
  it("registers provider, service, hook and read-only gateway methods, and no agent tools", () => {
    const { reg } = setup();
    assert.deepEqual(reg.providers.map((p) => p.id), ["bitrouter"]);
    assert.deepEqual(reg.services.map((s) => s.id), ["bitrouter"]);
    assert.deepEqual([...reg.hooks.keys()], ["before_model_resolve"]);
    assert.deepEqual([...reg.gatewayMethods.keys()].sort(), ["bitrouter.routes", "bitrouter.status"]);
    for (const { opts } of reg.gatewayMethods.values()) assert.equal(opts.scope, "operator.read");
    assert.equal(reg.tools.length, 0);
  });

  it("default export is a plain plugin object whose register has no side effects", () => {
    assert.equal(entry.id, "bitrouter");
    assert.equal(typeof entry.register, "function");
    const { api, reg } = fakeApi();
    entry.register(api);
    assert.equal(reg.providers.length, 1);
    assert.equal(reg.logs.length, 0, "register logs nothing and starts nothing");
  });

  it("the service restarts when the plugin config changes", () => {
    const { service } = setup();
    assert.deepEqual(service.reload, { configPrefixes: ["plugins.entries.bitrouter.config"] });
  });
});

describe("before_model_resolve", () => {
  it("overrides a model that has a configured route to the bitrouter provider", async () => {
    const { hook } = await started();
    assert.deepEqual(await ask(hook, "openai", "smart"), { providerOverride: "bitrouter", modelOverride: "smart" });
    assert.deepEqual(await ask(hook, "anthropic", "fast"), { providerOverride: "bitrouter", modelOverride: "fast" });
  });

  it("passes an unrouted model through in selective mode", async () => {
    const { hook } = await started();
    assert.equal(await ask(hook, "openai", "gpt-4o"), undefined);
    assert.equal(await ask(hook, "ollama", "llama3.3:8b"), undefined);
  });

  it("routes provider:model_id direct syntax for a provider BitRouter knows", async () => {
    const { hook } = await started();
    assert.deepEqual(await ask(hook, "openai", "anthropic:claude-3.5-haiku"), {
      providerOverride: "bitrouter",
      modelOverride: "anthropic:claude-3.5-haiku",
    });
  });

  it("overrides every model with interceptAllModels", async () => {
    const { hook } = await started({ pluginConfig: { ...SEED_EXAMPLE, interceptAllModels: true } });
    assert.deepEqual(await ask(hook, "openai", "gpt-4o"), { providerOverride: "bitrouter", modelOverride: "openai:gpt-4o" });
    assert.deepEqual(await ask(hook, "anthropic", "claude-sonnet-4-20250514"), {
      providerOverride: "bitrouter",
      modelOverride: "anthropic:claude-sonnet-4-20250514",
    });
    assert.deepEqual(await ask(hook, "openai", "smart"), { providerOverride: "bitrouter", modelOverride: "smart" });
    assert.deepEqual(await ask(hook, "my-local", "qwen3"), { providerOverride: "bitrouter", modelOverride: "qwen3" });
  });

  it("leaves a run already on bitrouter alone", async () => {
    const { hook } = await started({ pluginConfig: { interceptAllModels: true } });
    assert.equal(await ask(hook, "bitrouter", "smart"), undefined);
  });

  it("is a no-op while the daemon is unhealthy, and resumes when it recovers", async () => {
    const { hook, server, runtime } = await started({ routes: { ...SAMPLE_ROUTES, daemon_healthy: false } });
    assert.equal(await ask(hook, "openai", "smart"), undefined);
    server.setRoutes(SAMPLE_ROUTES); // notifications/resources/updated
    await waitFor(() => runtime.cache.healthy, 1000, "cache to turn healthy");
    assert.deepEqual(await ask(hook, "openai", "smart"), { providerOverride: "bitrouter", modelOverride: "smart" });
  });

  it("falls back to bitrouter_status when the routes document has no health flag", async () => {
    const { daemon_healthy: _omit, ...noFlag } = SAMPLE_ROUTES;
    const t = await started({ routes: noFlag });
    assert.deepEqual(await ask(t.hook, "openai", "smart"), { providerOverride: "bitrouter", modelOverride: "smart" });
    t.server.statusHealthy = false;
    await t.runtime.refresh();
    assert.equal(await ask(t.hook, "openai", "smart"), undefined);
  });

  it("is a no-op when bitrouter-mcp stops answering", async () => {
    const { hook, server, runtime, logText } = await started();
    server.up = false;
    await runtime.refresh();
    assert.equal(await ask(hook, "openai", "smart"), undefined);
    assert.match(logText("warn"), /cannot reach bitrouter-mcp at http:\/\/127\.0\.0\.1:8788\/mcp.*Routing is off/s);
  });

  it("decides from the cache: no MCP traffic per model request", async () => {
    const { hook, server } = await started();
    const before = server.calls.length;
    for (let i = 0; i < 50; i++) await ask(hook, "openai", i % 2 ? "smart" : "gpt-4o");
    assert.equal(server.calls.length, before);
  });

  it("picks up a new route from the resource-updated notification", async () => {
    const { hook, server, runtime } = await started();
    assert.equal(await ask(hook, "openai", "cheap"), undefined);
    server.setRoutes({ ...SAMPLE_ROUTES, models: [...SAMPLE_ROUTES.models, { name: "cheap", strategy: "priority", endpoints: [] }] });
    await waitFor(() => runtime.cache.get("cheap"), 1000, "route cheap");
    assert.deepEqual(await ask(hook, "openai", "cheap"), { providerOverride: "bitrouter", modelOverride: "cheap" });
  });

  it("without the service (agent --local), reads the routes once from a running bitrouter-mcp", async () => {
    const t = setup({ up: true });
    assert.deepEqual(await ask(t.hook, "openai", "smart"), { providerOverride: "bitrouter", modelOverride: "smart" });
    assert.deepEqual(await ask(t.hook, "openai", "fast"), { providerOverride: "bitrouter", modelOverride: "fast" });
    const reads = t.server.calls.filter((c) => c.method === "resources/read");
    assert.equal(reads.length, 1, "one read per refresh period, not per request");
    assert.ok(t.server.clients.every((c) => c.closed), "no connection left open");
    assert.match(t.env.BITROUTER_API_KEY, /^[\w-]+\.[\w-]+\.[\w-]+$/);
    const keygen = t.server.calls.find((c) => c.method === "tools/call" && c.params.name === "bitrouter_keygen");
    assert.deepEqual(keygen.params.arguments, { scope: "api", exp: "30d", models: SELECTIVE_MODELS }, "a per-process token is not saved");
    assert.deepEqual([...t.server.savedTokens], [], "no token file per `agent --local` run");
  });

  it("without the service and without a server, is a quick no-op", async () => {
    const t = setup({ up: false });
    assert.equal(await ask(t.hook, "openai", "smart"), undefined);
  });
});

describe("provider", () => {
  it("points at the daemon's /v1 with the OpenAI completions API", async () => {
    const { provider } = setup({ pluginConfig: { port: 9000, host: "0.0.0.0" } });
    const res = await provider.catalog.run({ config: {}, env: {}, resolveProviderApiKey: () => ({ apiKey: undefined }) });
    assert.equal(res.provider.baseUrl, "http://127.0.0.1:9000/v1");
    assert.equal(res.provider.api, "openai-completions");
    assert.deepEqual(provider.envVars, ["BITROUTER_API_KEY"]);
  });

  it("catalog lists the route table's virtual models", async () => {
    const { provider } = await started({ pluginConfig: {} });
    const res = await provider.catalog.run({ config: {}, env: {}, resolveProviderApiKey: () => ({ apiKey: "k" }) });
    assert.deepEqual(res.provider.models.map((m) => m.id), ["fast", "smart"]);
    assert.equal(res.provider.apiKey, "k");
    for (const m of res.provider.models) {
      assert.equal(typeof m.name, "string");
      assert.equal(m.reasoning, false);
      assert.deepEqual(m.input, ["text"]);
      assert.ok(m.maxTokens > 0);
    }
  });

  it("catalog falls back to the configured routes before the service has loaded them", async () => {
    const { provider } = setup();
    const res = await provider.catalog.run({ config: {}, env: {}, resolveProviderApiKey: () => ({ apiKey: undefined }) });
    assert.deepEqual(res.provider.models.map((m) => m.id), ["fast", "smart"]);
    assert.equal("apiKey" in res.provider, false);
  });

  it("resolves any provider:model_id dynamically", () => {
    const { provider } = setup();
    const m = provider.resolveDynamicModel({ provider: "bitrouter", modelId: "openai:gpt-4o" });
    assert.equal(m.id, "openai:gpt-4o");
    assert.equal(m.provider, "bitrouter");
    assert.equal(m.api, "openai-completions");
    assert.equal(m.baseUrl, "http://127.0.0.1:8787/v1");
  });
});

describe("service", () => {
  it("starts bitrouter-mcp with the MCP address, the written config file and the data dir", async () => {
    const t = await started({ pluginConfig: { ...SEED_EXAMPLE, mcpPort: 18788, binaryPath: "/x/bitrouter-mcp" } });
    assert.equal(t.spawned.length, 1);
    const child = t.spawned[0];
    assert.equal(child.command, "/opt/bin/bitrouter-mcp");
    const root = path.join(t.stateDir, "bitrouter");
    assert.deepEqual(child.args, [
      "serve",
      "--http",
      "127.0.0.1:18788",
      "--config",
      path.join(root, "bitrouter-mcp.config.json"),
      "--data-dir",
      path.join(root, "data"),
      "--exit-with-parent",
    ]);
    const written = JSON.parse(fs.readFileSync(child.args[4], "utf8"));
    assert.deepEqual(written, {
      port: 8787,
      host: "127.0.0.1",
      exposeToNetwork: false,
      autoStart: true,
      healthCheckIntervalMs: 30000,
      interceptAllModels: false,
      metricsPollMs: 250,
      enforceRoutes: false,
      providers: {},
      models: SEED_EXAMPLE.models,
    });
    assert.ok(fs.statSync(path.join(root, "data")).isDirectory());
    assert.ok(t.server.clients[0].url.endsWith(":18788/mcp"));
  });

  it("uses the configured dataDir", async () => {
    const t = setup();
    const dataDir = path.join(t.stateDir, "custom-data");
    const t2 = await started({ pluginConfig: { dataDir } });
    assert.equal(t2.spawned[0].args[t2.spawned[0].args.indexOf("--data-dir") + 1], dataDir);
  });

  it("mints the OpenClaw credential with bitrouter_keygen and exports BITROUTER_API_KEY", async () => {
    const t = await started();
    const keygen = t.server.calls.find((c) => c.method === "tools/call" && c.params.name === "bitrouter_keygen");
    assert.deepEqual(keygen.params.arguments, { scope: "api", exp: "30d", name: "openclaw", models: SELECTIVE_MODELS });
    assert.match(t.env.BITROUTER_API_KEY, /^[\w-]+\.[\w-]+\.[\w-]+$/);
    assert.doesNotMatch(t.logText(), new RegExp(t.env.BITROUTER_API_KEY.replace(/[.]/g, "\\.")), "token never logged");
    // A later refresh keeps the fresh token.
    await t.runtime.refresh();
    assert.equal(t.server.keygenCount, 1);
  });

  it("on a fresh data directory, creates BitRouter's signing account, then mints", async () => {
    const t = await started({ bitrouter: { accounts: 0 } });
    const tools = t.server.calls.filter((c) => c.method === "tools/call").map((c) => `${c.params.name}:${c.params.arguments.action ?? ""}`);
    assert.deepEqual(tools.slice(0, 4), ["bitrouter_keygen:", "bitrouter_account:list", "bitrouter_account:generate", "bitrouter_keygen:"]);
    assert.equal(t.server.accounts, 1);
    assert.match(t.env.BITROUTER_API_KEY, /^[\w-]+\.[\w-]+\.[\w-]+$/);
    assert.match(t.logText("info"), /created BitRouter's signing account Acct \(there was none\)/);
  });

  it("never creates an account when some exist but none is active; says how to pick one", async () => {
    const t = await started({ bitrouter: { accounts: 2, activeAccount: false } });
    assert.equal(t.server.accounts, 2);
    assert.ok(!t.server.calls.some((c) => c.params?.arguments?.action === "generate"));
    assert.equal(t.env.BITROUTER_API_KEY, undefined);
    assert.match(t.logText("warn"), /could not mint.*2 account\(s\) but none is active.*set_active/);
    assert.deepEqual(await ask(t.hook, "openai", "smart"), { providerOverride: "bitrouter", modelOverride: "smart" }, "routes still load");
  });

  it("a second start replaces the token saved by the first (\"already exists\")", async () => {
    const t = await started({ bitrouter: { savedTokens: ["openclaw"] } });
    const tools = t.server.calls.filter((c) => c.method === "tools/call").map((c) => c.params);
    assert.deepEqual(tools.slice(0, 3), [
      { name: "bitrouter_keygen", arguments: { scope: "api", exp: "30d", name: "openclaw", models: SELECTIVE_MODELS } },
      { name: "bitrouter_keys", arguments: { action: "remove", name: "openclaw" } },
      { name: "bitrouter_keygen", arguments: { scope: "api", exp: "30d", name: "openclaw", models: SELECTIVE_MODELS } },
    ]);
    assert.equal(t.server.keygenCount, 1);
    assert.deepEqual([...t.server.savedTokens], ["openclaw"]);
    assert.match(t.logText("info"), /minted a BitRouter API token.*saved to \/fake\/openclaw\.jwt/);
  });

  it("stop, then start again: mints a fresh token under the same name", async () => {
    const t = await started();
    const first = t.env.BITROUTER_API_KEY;
    await t.service.stop(t.serviceCtx);
    _resetMintedTokens(); // a new gateway process
    delete t.env.BITROUTER_API_KEY;
    await t.service.start(t.serviceCtx);
    assert.equal(t.server.keygenCount, 2);
    assert.notEqual(t.env.BITROUTER_API_KEY, first);
    assert.deepEqual([...t.server.savedTokens], ["openclaw"]);
    assert.doesNotMatch(t.logText("warn"), /could not mint/);
  });

  it("mints unsaved when the name stays taken (another process raced us)", async () => {
    const t = setup({ bitrouter: { savedTokens: ["openclaw"] } });
    running.push(t);
    const removeOnce = t.server.createClient;
    // The removal "succeeds" but another process saves "openclaw" again before our keygen.
    t.server.createClient = (url, opts) => {
      const c = removeOnce(url, opts);
      const callTool = c.callTool.bind(c);
      c.callTool = async (name, args) => {
        const r = await callTool(name, args);
        if (name === "bitrouter_keys") t.server.savedTokens.add("openclaw");
        return r;
      };
      return c;
    };
    t.runtime.createClient = t.server.createClient;
    await t.service.start(t.serviceCtx);
    const keygens = t.server.calls.filter((c) => c.params?.name === "bitrouter_keygen").map((c) => c.params.arguments);
    assert.deepEqual(keygens.at(-1), { scope: "api", exp: "30d", models: SELECTIVE_MODELS });
    assert.match(t.env.BITROUTER_API_KEY, /^[\w-]+\.[\w-]+\.[\w-]+$/);
  });

  it("resolves refusals by the server's error code, whatever their wording", async () => {
    const t = setup({ bitrouter: { accounts: 0, savedTokens: ["openclaw"] } });
    running.push(t);
    // Reworded refusals (as a later server might word them) with the same codes.
    const create = t.server.createClient;
    t.runtime.createClient = (url, opts) => {
      const c = create(url, opts);
      const callTool = c.callTool.bind(c);
      c.callTool = async (name, args) => {
        try {
          return await callTool(name, args);
        } catch (e) {
          throw toolError(name, "refused", e.code, e.field);
        }
      };
      return c;
    };
    await t.service.start(t.serviceCtx);
    const tools = t.server.calls.filter((c) => c.method === "tools/call").map((c) => `${c.params.name}:${c.params.arguments.action ?? ""}`);
    assert.deepEqual(tools.slice(0, 6), [
      "bitrouter_keygen:",
      "bitrouter_account:list",
      "bitrouter_account:generate",
      "bitrouter_keygen:",
      "bitrouter_keys:remove",
      "bitrouter_keygen:",
    ]);
    assert.match(t.env.BITROUTER_API_KEY, /^[\w-]+\.[\w-]+\.[\w-]+$/);
    assert.deepEqual([...t.server.savedTokens], ["openclaw"]);
  });

  it("gives up on a refusal it has no remedy for, and says why", async () => {
    const t = setup();
    running.push(t);
    const create = t.server.createClient;
    t.runtime.createClient = (url, opts) => {
      const c = create(url, opts);
      const callTool = c.callTool.bind(c);
      c.callTool = async (name, args) => {
        if (name === "bitrouter_keygen") throw toolError(name, "exp: expected a duration such as 30d", "invalid_argument", "exp");
        return callTool(name, args);
      };
      return c;
    };
    await t.service.start(t.serviceCtx);
    assert.equal(t.server.calls.filter((c) => c.params?.name === "bitrouter_keygen").length, 0);
    assert.equal(t.env.BITROUTER_API_KEY, undefined);
    assert.match(t.logText("warn"), /could not mint a BitRouter API token \(tool bitrouter_keygen failed: exp: expected a duration/);
  });

  it("does not guess from the wording: a refusal without a code is not resolved", async () => {
    const t = await started({ bitrouter: { savedTokens: ["openclaw"], legacyErrors: true } });
    assert.equal(t.server.calls.filter((c) => c.params?.name === "bitrouter_keys").length, 0);
    assert.equal(t.env.BITROUTER_API_KEY, undefined);
    assert.match(t.logText("warn"), /could not mint a BitRouter API token \(tool bitrouter_keygen failed: name: a token named "openclaw" already exists/);
  });

  it("keeps a BITROUTER_API_KEY the user set", async () => {
    const t = await started({ env: { BITROUTER_API_KEY: "user-key" } });
    assert.equal(t.env.BITROUTER_API_KEY, "user-key");
    assert.equal(t.server.keygenCount, 0);
    assert.match(t.logText("info"), /BITROUTER_API_KEY is set in the environment/);
  });

  it("subscribes to bitrouter://routes", async () => {
    const t = await started();
    assert.ok(t.server.calls.some((c) => c.method === "resources/subscribe" && c.params.uri === "bitrouter://routes"));
  });

  it("stops bitrouter-mcp with SIGTERM", async () => {
    const t = setup();
    await t.service.start(t.serviceCtx);
    const child = t.spawned[0];
    await t.service.stop(t.serviceCtx);
    assert.deepEqual(child.signals, ["SIGTERM"]);
    assert.equal(t.runtime.child, undefined);
  });

  it("escalates to SIGKILL when SIGTERM is ignored", async () => {
    const t = setup({ spawnOpts: { exitOnSigterm: false } });
    await t.service.start(t.serviceCtx);
    await t.service.stop(t.serviceCtx);
    assert.deepEqual(t.spawned[0].signals, ["SIGTERM", "SIGKILL"]);
  });

  it("says clearly when bitrouter-mcp is missing, and routing stays off", async () => {
    const missing = () => ({ ok: false, looked: [], message: "bitrouter-mcp was not found: ... `cargo install --path <repo>` ..." });
    const t = await started({ resolveBinary: missing });
    assert.equal(t.spawned.length, 0);
    assert.match(t.logText("error"), /bitrouter-mcp was not found.*cargo install --path/);
    assert.equal(await ask(t.hook, "openai", "smart"), undefined);
    const status = await callGateway(t.reg, "bitrouter.status");
    assert.equal(status.ok, false);
    assert.equal(status.error.code, "UNAVAILABLE");
    assert.match(status.error.message, /not found/);
  });

  it("does not spawn when autoStart is false; connects to a running server", async () => {
    const t = await started({ pluginConfig: { ...SEED_EXAMPLE, autoStart: false }, up: true });
    assert.equal(t.spawned.length, 0);
    assert.deepEqual(await ask(t.hook, "openai", "smart"), { providerOverride: "bitrouter", modelOverride: "smart" });
  });

  it("reuses a bitrouter-mcp already on the port instead of starting a second one", async () => {
    const t = await started({ up: true });
    assert.equal(t.spawned.length, 0);
    assert.match(t.logText("warn"), /already serving/);
  });

  it("joins a bitrouter-mcp that already serves this plugin's data dir (e.g. the user's make run)", async () => {
    const t = setup({ up: true });
    running.push(t);
    const dataDir = path.join(t.stateDir, "bitrouter", "data");
    t.server.statusExtra = {
      paths: { data_dir: dataDir },
      ownership: { role: "owner", owner: { pid: 4242, transport: "http://127.0.0.1:8788/mcp" } },
    };
    await t.service.start(t.serviceCtx);
    assert.equal(t.spawned.length, 0);
    assert.match(t.logText("info"), /joining the bitrouter-mcp already serving .* pid 4242/);
    assert.doesNotMatch(t.logText("warn"), /already serving/);
    assert.deepEqual(await ask(t.hook, "openai", "smart"), { providerOverride: "bitrouter", modelOverride: "smart" });
  });

  it("names the fix when the MCP port is served for another data dir", async () => {
    const t = setup({ up: true });
    running.push(t);
    t.server.statusExtra = { paths: { data_dir: "/home/someone/.local/share/bitrouter-mcp" } };
    await t.service.start(t.serviceCtx);
    assert.equal(t.spawned.length, 0);
    const warn = t.logText("warn");
    assert.match(warn, /another data dir \(\/home\/someone\/.local\/share\/bitrouter-mcp/);
    assert.match(warn, /config\.dataDir to \/home\/someone/);
    assert.match(warn, /config\.mcpPort to a free port/);
  });

  it("reports the child's last output when it exits, with a port hint, and restarts it", async () => {
    const t = await started();
    const first = t.spawned[0];
    // Coloured, as a server writing to a terminal would: the message quotes it without escape codes.
    first.stderr.emit("data", "\u001b[31mERROR\u001b[0m Error: Address already in use (os error 98)\n");
    t.server.up = false;
    first.exit(1);
    assert.match(t.logText("error"), /bitrouter-mcp exited \(code 1\)\. A port is already in use.*ERROR Error: Address already in use \(os error 98\)/s);
    assert.doesNotMatch(t.logText("error"), /\u001b/);
    await waitFor(() => t.spawned.length === 2, 1000, "restart");
    await waitFor(() => t.runtime.cache.healthy, 1000, "healthy after restart");
  });

  it("gives up after repeated crashes", async () => {
    const t = await started();
    for (let i = 0; i < 4; i++) {
      const n = t.spawned.length;
      t.spawned.at(-1).exit(1);
      if (i < 3) await waitFor(() => t.spawned.length === n + 1, 1000, `restart ${i + 1}`);
    }
    await sleep(100);
    assert.equal(t.spawned.length, 4);
    assert.match(t.logText("error"), /not restarting/);
  });

  it("uses the committed config passed to start (config reload)", async () => {
    const t = setup({ pluginConfig: { interceptAllModels: false } });
    running.push(t);
    const ctx = { ...t.serviceCtx, config: { plugins: { entries: { bitrouter: { config: { interceptAllModels: true } } } } } };
    await t.service.start(ctx);
    assert.deepEqual(await ask(t.hook, "openai", "gpt-4o"), { providerOverride: "bitrouter", modelOverride: "openai:gpt-4o" });
  });
});

describe("gateway methods", () => {
  it("bitrouter.status answers from bitrouter_status plus the adapter's view", async () => {
    const t = await started();
    const res = await callGateway(t.reg, "bitrouter.status");
    assert.equal(res.ok, true);
    assert.equal(res.payload.listen, "127.0.0.1:8787");
    assert.equal(res.payload.daemon.healthy, true);
    assert.equal(res.payload.openclaw.routingActive, true);
    assert.equal(res.payload.openclaw.managed, true);
    assert.deepEqual(res.payload.openclaw.virtualModels.sort(), ["fast", "smart"]);
  });

  it("bitrouter.routes answers with the routes resource", async () => {
    const t = await started();
    const res = await callGateway(t.reg, "bitrouter.routes");
    assert.equal(res.ok, true);
    assert.deepEqual(res.payload, SAMPLE_ROUTES);
  });
});
