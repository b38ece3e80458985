// @ts-check
/**
 * BitRouter in OpenClaw's provider usage surface (`openclaw status --usage`, `/status`, the Control
 * UI): the `bitrouter` provider's `resolveUsageAuth` + `fetchUsageSnapshot` hooks, answered by
 * bitrouter-mcp's `bitrouter_usage` tool (the daemon's spend log over the last 24 hours).
 *
 * BitRouter has no quota windows, so the snapshot carries a one-line summary (requests, errors,
 * share served by fallback endpoints, tokens, the busiest virtual models), the spend in USD, and
 * per-model and per-provider attribution as cost history.
 */

import { PROVIDER_ID } from "./config.js";
import { API_KEY_ENV } from "./provider.js";

/** The window shown in OpenClaw (bitrouter_usage's `since`). */
export const USAGE_SINCE = "24h";
export const USAGE_LABEL = "last 24 h";
/** Virtual models named in the summary line. */
const SUMMARY_MODELS = 3;

const count = (/** @type {number} */ n) => new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 }).format(n);
const num = (/** @type {unknown} */ v) => (typeof v === "number" && Number.isFinite(v) && v >= 0 ? v : 0);

/**
 * OpenClaw's ProviderUsageSnapshot for a `bitrouter_usage` result.
 * @param {any} usage structured result of bitrouter_usage
 */
export function usageSnapshot(usage) {
  const t = usage?.totals ?? {};
  const requests = num(t.requests);
  const errors = num(t.errors);
  const fallback = num(t.fallback_requests);
  const tokens = num(t.input_tokens) + num(t.output_tokens);
  /** @type {string[]} */
  const parts = [`${count(requests)} request${requests === 1 ? "" : "s"}`];
  if (requests > 0) {
    parts.push(`${count(errors)} error${errors === 1 ? "" : "s"}`);
    parts.push(`${count(fallback)} via fallback (${Math.round((fallback / requests) * 100)}%)`);
    parts.push(`${count(tokens)} tokens`);
    /** @type {any[]} */
    const models = Array.isArray(usage?.by_model) ? usage.by_model : [];
    const named = models.slice(0, SUMMARY_MODELS).map((m) => `${m.model} ${count(num(m.requests))}`);
    if (usage?.direct?.requests) named.push(`direct ${count(num(usage.direct.requests))}`);
    if (named.length) parts.push(named.join(", "));
  } else if (typeof usage?.note === "string" && usage.note) {
    parts.push(usage.note);
  }
  /** @type {(m: any) => { name: string, requests: number, inputTokens: number, cacheReadTokens: number, cacheWriteTokens: number, outputTokens: number, totalTokens: number }} */
  const modelRow = (m) => ({
    name: String(m.name),
    requests: num(m.requests),
    inputTokens: num(m.input_tokens),
    cacheReadTokens: 0,
    cacheWriteTokens: 0,
    outputTokens: num(m.output_tokens),
    totalTokens: num(m.input_tokens) + num(m.output_tokens),
  });
  const byModel = (Array.isArray(usage?.by_model) ? usage.by_model : []).map((/** @type {any} */ m) =>
    modelRow({ ...m, name: m.model }),
  );
  if (usage?.direct?.requests) byModel.push(modelRow({ ...usage.direct, name: "direct provider:model_id" }));
  return {
    provider: PROVIDER_ID,
    displayName: "BitRouter",
    windows: [],
    plan: `local router, ${USAGE_LABEL}`,
    summary: parts.join(" · "),
    billing: [{ type: /** @type {const} */ ("spend"), label: `Spend (${USAGE_LABEL})`, amount: num(t.cost_usd), unit: "USD", period: USAGE_LABEL }],
    costHistory: {
      unit: "USD",
      periodDays: 1,
      daily: [],
      models: byModel,
      categories: (Array.isArray(usage?.by_provider) ? usage.by_provider : []).map((/** @type {any} */ p) => ({
        name: String(p.provider),
        amount: num(p.cost_usd),
      })),
    },
  };
}

/**
 * @param {object} deps
 * @param {<T>(fn: (client: any) => Promise<T>) => Promise<T>} deps.withClient runs fn with an MCP client
 * @param {NodeJS.ProcessEnv} [deps.env]
 */
export function createUsageHooks({ withClient, env = process.env }) {
  return {
    /**
     * The usage "token" only has to exist: bitrouter_usage is read over the local MCP endpoint, which
     * needs no credential. The provider's own key (BITROUTER_API_KEY or OpenClaw's auth store) is used
     * when there is one, so OpenClaw attributes the usage to that credential.
     * @param {any} ctx ProviderResolveUsageAuthContext
     */
    resolveUsageAuth: (ctx) => {
      /** @type {string|undefined} */
      let key;
      try {
        key = ctx?.resolveApiKeyFromConfigAndStore?.({ providerIds: [PROVIDER_ID], envDirect: [ctx?.env?.[API_KEY_ENV] ?? env[API_KEY_ENV]] });
      } catch {
        key = undefined;
      }
      return { token: key || "bitrouter-mcp" };
    },
    /** @param {any} ctx ProviderFetchUsageSnapshotContext */
    fetchUsageSnapshot: async (ctx) => {
      try {
        const usage = await withClient((client) =>
          client.callTool("bitrouter_usage", { since: USAGE_SINCE, recent: 0 }, { timeoutMs: ctx?.timeoutMs }),
        );
        return usageSnapshot(usage);
      } catch (e) {
        return {
          provider: PROVIDER_ID,
          displayName: "BitRouter",
          windows: [],
          error: `bitrouter-mcp did not answer: ${e instanceof Error ? e.message : String(e)}`,
        };
      }
    },
  };
}
