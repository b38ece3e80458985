// The config contract with the server: the adapter reads defaults, ranges, the server's keys, the
// built-in providers and the `${NAME}` grammar from the files the server generates from its config model
// (openclaw.plugin.json's configSchema, src/server-facts.json; the server's `cargo test --test contract`
// fails when they are stale), and matches the same shared table the server's test does.

import assert from "node:assert/strict";
import fs from "node:fs";
import { describe, it } from "node:test";

import { loginVars } from "../src/auth.js";
import { DEFAULTS, MANIFEST, SERVER_CONFIG_KEYS, SERVER_FACTS, envReference, resolveConfig } from "../src/config.js";

const table = JSON.parse(fs.readFileSync(new URL("../../tests/fixtures/config-contract.json", import.meta.url), "utf8"));
const schema = MANIFEST.configSchema;

describe("config contract", () => {
  it("reads a ${NAME} reference exactly as the server does", () => {
    assert.ok(table.envReferences.length >= 10);
    for (const c of table.envReferences) {
      assert.equal(envReference(c.value) ?? null, c.reference, c.value);
    }
  });

  it("lets OpenClaw's config validation refuse what the server refuses: the manifest's apiKey pattern", () => {
    const providerKey = new RegExp(schema.properties.providers.additionalProperties.properties.apiKey.pattern, "u");
    const endpointKey = new RegExp(
      schema.properties.models.additionalProperties.properties.endpoints.items.properties.apiKey.pattern,
      "u",
    );
    for (const c of table.envReferences) {
      assert.equal(providerKey.test(c.value), c.valid, c.value);
      assert.equal(endpointKey.test(c.value), c.valid, c.value);
    }
  });

  it("asks for the key variables `bitrouter-mcp auth login` asks for", () => {
    for (const c of table.loginVars) {
      assert.deepEqual(
        loginVars(resolveConfig(c.config)).map((v) => v.env),
        c.vars,
        JSON.stringify(c.config),
      );
    }
  });

  it("knows the server's built-in providers, the same the manifest lets `derives` name", () => {
    const names = SERVER_FACTS.builtinProviders.map((b) => b.name);
    assert.ok(names.includes("openrouter"));
    assert.deepEqual(schema.properties.providers.additionalProperties.properties.derives.enum, names);
    for (const b of SERVER_FACTS.builtinProviders) assert.equal(b.envVar, `${b.envPrefix}_API_KEY`);
  });

  it("takes every default from the manifest and writes only the server's keys", () => {
    const resolved = resolveConfig(undefined);
    for (const [k, s] of Object.entries(schema.properties)) {
      if (s.default !== undefined) assert.deepEqual(resolved[k], s.default, k);
      else assert.equal(resolved[k], undefined, k);
    }
    assert.deepEqual(Object.keys(DEFAULTS).sort(), Object.keys(schema.properties).filter((k) => typeof schema.properties[k].default !== "object" && schema.properties[k].default !== undefined).sort());
    const adapterOnly = Object.keys(schema.properties).filter((k) => !SERVER_CONFIG_KEYS.includes(k)).sort();
    assert.deepEqual(adapterOnly, ["binaryPath", "dataDir", "mcpPort"]);
  });
});
