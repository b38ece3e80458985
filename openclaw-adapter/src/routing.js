// @ts-check
/**
 * The cached route table and the `before_model_resolve` decision.
 *
 * The cache is filled from the MCP resource `bitrouter://routes` (by the service, on change and on a
 * timer); the hook only reads it. Nothing in this module does I/O, so a model decision never waits on
 * the network.
 */

import { PROVIDER_ID } from "./config.js";

/**
 * @typedef {object} RouteEndpoint
 * @property {string} provider
 * @property {string} model_id
 * @property {boolean} [active]
 *
 * @typedef {object} Route
 * @property {string} name
 * @property {string} [strategy]
 * @property {RouteEndpoint[]} [endpoints]
 *
 * @typedef {object} RoutesDocument   what `bitrouter://routes` holds
 * @property {Route[]} models
 * @property {string[]} [direct_providers]
 * @property {boolean} [intercept_all_models]
 * @property {boolean} [daemon_healthy]
 * @property {string} [updated_at]
 */

/** @param {unknown} v */
function isRecord(v) {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export class RouteCache {
  constructor() {
    /** @type {Map<string, Route>} */
    this.routes = new Map();
    /** @type {Set<string>} */
    this.directProviders = new Set();
    /** Health of the daemon as last reported; false until the first successful refresh. */
    this.healthy = false;
    /** Whether the last attempt to reach bitrouter-mcp worked. */
    this.reachable = false;
    this.loaded = false;
    /** @type {string|undefined} */
    this.updatedAt = undefined;
    /** @type {number|undefined} epoch ms of the last successful refresh */
    this.fetchedAt = undefined;
    /** @type {string|undefined} */
    this.lastError = undefined;
  }

  /**
   * Replaces the cache with a routes document.
   * @param {unknown} doc
   * @param {{ statusHealthy?: boolean, now?: number }} [opts]  daemon.healthy from bitrouter_status, used
   *        when the document has no daemon_healthy flag
   */
  update(doc, { statusHealthy, now = Date.now() } = {}) {
    if (!isRecord(doc)) throw new TypeError("routes document is not an object");
    const d = /** @type {Record<string, unknown>} */ (doc);
    /** @type {Map<string, Route>} */
    const routes = new Map();
    if (Array.isArray(d.models)) {
      for (const r of d.models) {
        if (isRecord(r) && typeof r.name === "string" && r.name) routes.set(r.name, /** @type {Route} */ (r));
      }
    }
    this.routes = routes;
    this.directProviders = new Set(Array.isArray(d.direct_providers) ? d.direct_providers.filter((p) => typeof p === "string") : []);
    this.healthy = typeof d.daemon_healthy === "boolean" ? d.daemon_healthy : statusHealthy === true;
    this.updatedAt = typeof d.updated_at === "string" ? d.updated_at : undefined;
    this.reachable = true;
    this.loaded = true;
    this.fetchedAt = now;
    this.lastError = undefined;
  }

  /** The routes document carries its own health flag. @param {unknown} doc */
  static hasHealthFlag(doc) {
    return isRecord(doc) && typeof (/** @type {any} */ (doc).daemon_healthy) === "boolean";
  }

  /**
   * bitrouter-mcp could not be asked: routing stops until it answers again. The route names are kept so
   * the model catalog stays stable.
   * @param {string} reason
   */
  markUnreachable(reason) {
    this.reachable = false;
    this.healthy = false;
    this.lastError = reason;
  }

  /** Names of the virtual models (the route table). */
  names() {
    return [...this.routes.keys()];
  }

  /** @param {string} name */
  get(name) {
    return this.routes.get(name);
  }
}

/**
 * `provider:model_id` direct-routing syntax understood by BitRouter.
 * @param {string} modelId
 * @param {Set<string>} directProviders
 */
export function directRouteProvider(modelId, directProviders) {
  const i = modelId.indexOf(":");
  if (i <= 0 || i === modelId.length - 1) return undefined;
  const p = modelId.slice(0, i);
  return directProviders.has(p) ? p : undefined;
}

/**
 * @typedef {{ providerOverride?: string, modelOverride?: string }} ModelOverride
 */

/**
 * Decides whether a run goes through BitRouter.
 *
 * - daemon unhealthy or routes never loaded: undefined (OpenClaw keeps its own provider);
 * - already on the bitrouter provider: undefined (nothing to change);
 * - the model is a virtual model of the route table: override to bitrouter/<that name>;
 * - the model id uses direct syntax `provider:model_id` for a provider BitRouter knows: override;
 * - interceptAllModels: every other model goes to bitrouter as `provider:model_id` when BitRouter knows
 *   the provider, else under its own id;
 * - otherwise undefined (selective mode passes unrouted models through).
 *
 * @param {{ providerId?: string, modelId?: string }} requested  ctx.modelProviderId / ctx.modelId
 * @param {RouteCache} cache
 * @param {{ interceptAllModels: boolean }} opts
 * @returns {ModelOverride | undefined}
 */
export function decideModelRoute(requested, cache, { interceptAllModels }) {
  const modelId = requested.modelId?.trim();
  const providerId = requested.providerId?.trim();
  if (!modelId) return undefined;
  if (!cache.loaded || !cache.healthy) return undefined;
  if (providerId === PROVIDER_ID) return undefined;

  const route = cache.get(modelId);
  if (route) return { providerOverride: PROVIDER_ID, modelOverride: route.name };

  if (directRouteProvider(modelId, cache.directProviders)) {
    return { providerOverride: PROVIDER_ID, modelOverride: modelId };
  }

  if (interceptAllModels) {
    const modelOverride = providerId && cache.directProviders.has(providerId) ? `${providerId}:${modelId}` : modelId;
    return { providerOverride: PROVIDER_ID, modelOverride };
  }
  return undefined;
}
