// The routing decision on its own, over a route cache filled from a routes document.

import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { RouteCache, decideModelRoute, directRouteProvider } from "../src/routing.js";
import { SAMPLE_ROUTES } from "./helpers/fake-mcp-server.js";

function cache(doc = SAMPLE_ROUTES, opts) {
  const c = new RouteCache();
  c.update(doc, opts);
  return c;
}

const selective = { interceptAllModels: false };
const all = { interceptAllModels: true };

describe("decideModelRoute", () => {
  it("does nothing before the first route table arrives", () => {
    assert.equal(decideModelRoute({ providerId: "openai", modelId: "smart" }, new RouteCache(), all), undefined);
  });

  it("routes virtual models, passes others in selective mode", () => {
    const c = cache();
    assert.deepEqual(decideModelRoute({ providerId: "openai", modelId: "smart" }, c, selective), {
      providerOverride: "bitrouter",
      modelOverride: "smart",
    });
    assert.equal(decideModelRoute({ providerId: "openai", modelId: "gpt-4o" }, c, selective), undefined);
    assert.equal(decideModelRoute({ providerId: "openai", modelId: "" }, c, all), undefined);
  });

  it("only treats provider:model as direct routing for providers BitRouter knows", () => {
    const c = cache();
    assert.equal(directRouteProvider("openai:gpt-4o", c.directProviders), "openai");
    assert.equal(directRouteProvider("llama3.3:8b", c.directProviders), undefined);
    assert.equal(directRouteProvider("openai:", c.directProviders), undefined);
    assert.equal(decideModelRoute({ providerId: "ollama", modelId: "llama3.3:8b" }, c, selective), undefined);
  });

  it("is off when the daemon is unhealthy or unreachable, even with interceptAllModels", () => {
    assert.equal(decideModelRoute({ providerId: "openai", modelId: "smart" }, cache({ ...SAMPLE_ROUTES, daemon_healthy: false }), all), undefined);
    const c = cache();
    c.markUnreachable("gone");
    assert.equal(decideModelRoute({ providerId: "openai", modelId: "smart" }, c, all), undefined);
    assert.deepEqual(c.names().sort(), ["fast", "smart"], "names survive for the catalog");
  });

  it("uses the status tool's health when the document has no flag", () => {
    const { daemon_healthy: _d, ...doc } = SAMPLE_ROUTES;
    assert.equal(cache(doc, { statusHealthy: true }).healthy, true);
    assert.equal(cache(doc, { statusHealthy: false }).healthy, false);
    assert.equal(cache(doc).healthy, false);
  });

  it("rejects a document that is not an object and keeps the old table", () => {
    const c = cache();
    assert.throws(() => c.update([]));
    assert.ok(c.get("smart"));
  });
});
