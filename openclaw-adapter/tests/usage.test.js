// BitRouter's usage in OpenClaw's provider usage surface: the `bitrouter` provider declares the usage
// contract and hooks, the snapshot OpenClaw prints (`openclaw status --usage`) carries the numbers of
// bitrouter_usage, and an unreachable bitrouter-mcp is an error line, not a crash.

import assert from "node:assert/strict";
import fs from "node:fs";
import { describe, it } from "node:test";

import { register } from "../index.js";
import { usageSnapshot } from "../src/usage.js";
import { FakeBitrouter, fakeApi } from "./helpers/fakes.js";

const USAGE = {
  since: "2026-11-29T08:00:00.000Z",
  until: "2026-11-30T08:00:00.000Z",
  totals: { requests: 1234, errors: 3, input_tokens: 100000, output_tokens: 23456, cost_usd: 1.234567, fallback_requests: 40, fallback_share: 0.0324 },
  by_model: [
    { model: "smart", requests: 1000, errors: 1, input_tokens: 90000, output_tokens: 20000, cost_usd: 1.2, fallback_requests: 40 },
    { model: "fast", requests: 200, errors: 2, input_tokens: 9000, output_tokens: 3000, cost_usd: 0.03, fallback_requests: 0 },
  ],
  direct: { requests: 34, errors: 0, input_tokens: 1000, output_tokens: 456, cost_usd: 0.004567, fallback_requests: 0 },
  by_provider: [
    { provider: "anthropic", requests: 900, cost_usd: 1.1 },
    { provider: "openai", requests: 334, cost_usd: 0.134567 },
  ],
  by_endpoint: [],
  recent: [],
};

function setup(usage) {
  const server = new FakeBitrouter({ up: true });
  server.usage = usage;
  const fake = fakeApi({ pluginConfig: { autoStart: false } });
  register(fake.api, { createClient: server.createClient, env: {} });
  return { server, provider: fake.reg.providers[0] };
}

describe("provider usage", () => {
  it("the manifest declares bitrouter as a usage provider and the provider has both hooks", () => {
    const manifest = JSON.parse(fs.readFileSync(new URL("../openclaw.plugin.json", import.meta.url), "utf8"));
    assert.deepEqual(manifest.contracts.usageProviders, ["bitrouter"]);
    const { provider } = setup(USAGE);
    assert.equal(typeof provider.resolveUsageAuth, "function");
    assert.equal(typeof provider.fetchUsageSnapshot, "function");
  });

  it("usage auth needs no pasted key: the provider key when there is one, a placeholder otherwise", () => {
    const { provider } = setup(USAGE);
    assert.deepEqual(provider.resolveUsageAuth({ env: {}, resolveApiKeyFromConfigAndStore: () => "jwt-1" }), { token: "jwt-1" });
    assert.deepEqual(provider.resolveUsageAuth({ env: {}, resolveApiKeyFromConfigAndStore: () => undefined }), { token: "bitrouter-mcp" });
  });

  it("the snapshot carries bitrouter_usage's numbers for the last 24 h", async () => {
    const { server, provider } = setup(USAGE);
    const snap = await provider.fetchUsageSnapshot({ provider: "bitrouter", token: "x", timeoutMs: 5000 });
    const call = server.calls.find((c) => c.params?.name === "bitrouter_usage");
    assert.deepEqual(call.params.arguments, { since: "24h", recent: 0 });
    assert.equal(snap.provider, "bitrouter");
    assert.equal(snap.displayName, "BitRouter");
    assert.deepEqual(snap.windows, []);
    assert.equal(snap.summary, "1,234 requests · 3 errors · 40 via fallback (3%) · 123,456 tokens · smart 1,000, fast 200, direct 34");
    assert.deepEqual(snap.billing, [{ type: "spend", label: "Spend (last 24 h)", amount: 1.234567, unit: "USD", period: "last 24 h" }]);
    assert.deepEqual(
      snap.costHistory.models.map((m) => [m.name, m.requests, m.totalTokens]),
      [["smart", 1000, 110000], ["fast", 200, 12000], ["direct provider:model_id", 34, 1456]],
    );
    assert.deepEqual(snap.costHistory.categories, [{ name: "anthropic", amount: 1.1 }, { name: "openai", amount: 0.134567 }]);
  });

  it("no traffic yet shows the server's note", () => {
    const snap = usageSnapshot({ totals: { requests: 0 }, note: "BitRouter has not logged any request on this home yet" });
    assert.equal(snap.summary, "0 requests · BitRouter has not logged any request on this home yet");
    assert.equal(snap.billing[0].amount, 0);
  });

  it("an unreachable bitrouter-mcp or a failing tool is an error entry, not a throw", async () => {
    const down = new FakeBitrouter({ up: false });
    const fake = fakeApi({ pluginConfig: { autoStart: false } });
    register(fake.api, { createClient: down.createClient, env: {} });
    const snap = await fake.reg.providers[0].fetchUsageSnapshot({ timeoutMs: 100 });
    assert.match(snap.error, /bitrouter-mcp did not answer: .*ECONNREFUSED|fetch failed/);
    assert.deepEqual(snap.windows, []);

    const { provider } = setup(new Error("tool bitrouter_usage failed: BitRouter's database /x/bitrouter.db is locked"));
    const locked = await provider.fetchUsageSnapshot({ timeoutMs: 100 });
    assert.match(locked.error, /is locked/);
  });
});
