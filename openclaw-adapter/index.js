// @ts-check
/**
 * OpenClaw plugin entry for BitRouter. Wires the pieces and nothing else: `register` is synchronous and
 * has no side effects (OpenClaw also calls it for read-only discovery); processes and sockets start in
 * the `bitrouter` service, which OpenClaw runs in the gateway.
 *
 * Registers: provider `bitrouter` (with its usage hooks), service `bitrouter`, hook `before_model_resolve`, gateway methods
 * `bitrouter.status` and `bitrouter.routes`. No agent tools: the four BitRouter tools reach agents as
 * MCP tools from the manifest's `mcpServers.bitrouter`.
 *
 * No imports from `openclaw`: the host passes everything in `api`, so the plugin needs no build step. Its
 * one dependency is the official MCP SDK (src/mcp-client.js), installed with the plugin by npm.
 */

import { createAuthMethod } from "./src/auth.js";
import { PLUGIN_ID, fallbackStateDir } from "./src/config.js";
import { createProvider } from "./src/provider.js";
import { decideModelRoute } from "./src/routing.js";
import { BitrouterRuntime } from "./src/runtime.js";
import { createUsageHooks } from "./src/usage.js";

/**
 * @param {any} api OpenClawPluginApi
 * @param {ConstructorParameters<typeof BitrouterRuntime>[0]["deps"]} [deps] test seams
 */
export function register(api, deps) {
  const logger = api.logger;
  /** @param {NodeJS.ProcessEnv} [env] */
  const resolveStateDir = (env) => {
    try {
      const dir = api.runtime?.state?.resolveStateDir?.(env);
      if (typeof dir === "string" && dir) return dir;
    } catch {
      // fall through
    }
    return fallbackStateDir(env);
  };

  const runtime = new BitrouterRuntime({
    logger,
    pluginConfig: api.pluginConfig,
    resolveStateDir: () => resolveStateDir(),
    deps,
  });

  api.registerProvider({
    ...createProvider({
      getConfig: () => runtime.config,
      cache: runtime.cache,
      auth: [createAuthMethod({ resolveStateDir, resolveBinary: deps?.resolveBinary, spawn: deps?.spawn })],
      env: deps?.env,
    }),
    // `openclaw status --usage` and the Control UI's usage cards: bitrouter_usage over MCP.
    ...createUsageHooks({ withClient: (fn) => runtime.withClient(fn), env: deps?.env }),
  });

  api.registerService({
    id: PLUGIN_ID,
    reload: { configPrefixes: [`plugins.entries.${PLUGIN_ID}.config`] },
    start: (/** @type {any} */ ctx) => runtime.start(ctx),
    stop: (/** @type {any} */ ctx) => runtime.stop(ctx),
  });

  api.on("before_model_resolve", async (/** @type {any} */ _event, /** @type {any} */ ctx) => {
    if (!runtime.serviceStarted) await runtime.warmUp();
    const decision = decideModelRoute(
      { providerId: ctx?.modelProviderId, modelId: ctx?.modelId },
      runtime.cache,
      { interceptAllModels: runtime.config.interceptAllModels },
    );
    if (decision) {
      logger.debug?.(`[bitrouter] routing ${ctx?.modelProviderId ?? "?"}/${ctx?.modelId} -> bitrouter/${decision.modelOverride}`);
    }
    return decision;
  });

  /**
   * @param {string} method
   * @param {() => Promise<unknown>} answer
   */
  const gatewayMethod = (method, answer) =>
    api.registerGatewayMethod(
      method,
      async (/** @type {any} */ { respond }) => {
        try {
          respond(true, await answer());
        } catch (e) {
          const reason = e instanceof Error ? e.message : String(e);
          respond(false, undefined, {
            code: "UNAVAILABLE",
            message: `bitrouter-mcp did not answer: ${reason}${runtime.lastError && runtime.lastError !== reason ? ` (${runtime.lastError})` : ""}`,
            retryable: true,
          });
        }
      },
      { scope: "operator.read" },
    );
  gatewayMethod("bitrouter.status", () => runtime.status());
  gatewayMethod("bitrouter.routes", () => runtime.routes());

  return runtime;
}

export default {
  id: PLUGIN_ID,
  name: "BitRouter",
  description: "Route OpenClaw's model requests through a local BitRouter daemon supervised by bitrouter-mcp.",
  /** @param {any} api */
  register(api) {
    register(api);
  },
};
