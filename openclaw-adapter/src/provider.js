// @ts-check
/**
 * The `bitrouter` model provider: an OpenAI-compatible endpoint at the daemon's `/v1`, whose catalog is
 * the route table's virtual models and which accepts any other id (`provider:model_id`) dynamically.
 *
 * The credential is not handled here: the service mints a JWT and puts it in BITROUTER_API_KEY, which
 * the manifest declares, and OpenClaw sends it as a bearer token.
 */

import { PROVIDER_ID, daemonBaseUrl } from "./config.js";

export const API_KEY_ENV = "BITROUTER_API_KEY";

/** Limits advertised for router models; BitRouter does not publish per-route metadata. */
export const MODEL_DEFAULTS = Object.freeze({
  contextWindow: 128000,
  maxTokens: 8192,
});

/**
 * @param {string} id
 * @param {string} [label]
 */
export function modelDefinition(id, label) {
  return {
    id,
    name: label ?? id,
    reasoning: false,
    input: /** @type {("text"|"image")[]} */ (["text"]),
    cost: { input: 0, output: 0, cacheRead: 0, cacheWrite: 0 },
    contextWindow: MODEL_DEFAULTS.contextWindow,
    maxTokens: MODEL_DEFAULTS.maxTokens,
  };
}

/**
 * Virtual model names for the catalog: the live route table when the service has loaded it, otherwise
 * the routes declared in the plugin config (so `bitrouter/<name>` validates before the gateway runs).
 * @param {import("./routing.js").RouteCache} cache
 * @param {import("./config.js").AdapterConfig} cfg
 */
export function catalogModelNames(cache, cfg) {
  const names = new Set(cache.loaded ? cache.names() : []);
  for (const name of Object.keys(cfg.models ?? {})) names.add(name);
  return [...names].sort();
}

/**
 * @param {object} deps
 * @param {() => import("./config.js").AdapterConfig} deps.getConfig
 * @param {import("./routing.js").RouteCache} deps.cache
 * @param {any[]} [deps.auth]   ProviderAuthMethod[]
 * @param {NodeJS.ProcessEnv} [deps.env]
 */
export function createProvider({ getConfig, cache, auth = [], env = process.env }) {
  return {
    id: PROVIDER_ID,
    label: "BitRouter",
    docsPath: "/providers/models",
    envVars: [API_KEY_ENV],
    auth,
    catalog: {
      order: /** @type {const} */ ("simple"),
      /** @param {any} ctx ProviderCatalogContext */
      run: async (ctx) => {
        const cfg = getConfig();
        /** @type {string|undefined} */
        let apiKey;
        try {
          apiKey = ctx?.resolveProviderApiKey?.(PROVIDER_ID)?.apiKey;
        } catch {
          apiKey = undefined;
        }
        apiKey ??= env[API_KEY_ENV];
        return {
          provider: {
            baseUrl: daemonBaseUrl(cfg),
            ...(apiKey ? { apiKey } : {}),
            api: /** @type {const} */ ("openai-completions"),
            models: catalogModelNames(cache, cfg).map((name) => {
              const route = cache.get(name);
              const label = route?.strategy ? `BitRouter ${name} (${route.strategy})` : `BitRouter ${name}`;
              return modelDefinition(name, label);
            }),
          },
        };
      },
    },
    /** Any id BitRouter may route: virtual names and `provider:model_id`. @param {any} ctx */
    resolveDynamicModel: (ctx) => {
      const modelId = typeof ctx?.modelId === "string" ? ctx.modelId.trim() : "";
      if (!modelId) return undefined;
      return {
        ...modelDefinition(modelId),
        provider: PROVIDER_ID,
        api: "openai-completions",
        baseUrl: daemonBaseUrl(getConfig()),
      };
    },
  };
}
