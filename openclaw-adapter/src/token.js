// @ts-check
/**
 * OpenClaw's BitRouter API token: minted with `bitrouter_keygen` into BITROUTER_API_KEY (which OpenClaw
 * sends as the `bitrouter` provider's bearer), saved as the account's token "openclaw" by the gateway's
 * service, renewed a week before it expires, never minted over a key the user set.
 *
 * The server's refusals a normal install meets are resolved by their error code (the tool result's
 * `_meta["bitrouter/error"].code`, surfaced as `ToolError.code`), not by their wording:
 * `no_active_account` (fresh data directory) and `already_exists` (the token an earlier start saved).
 */

import { ToolError } from "./mcp-client.js";
import { API_KEY_ENV } from "./provider.js";

/**
 * Arguments of the keygen call that mints OpenClaw's credential. The gateway's service saves it under
 * this name (replacing the one an earlier start saved); short-lived processes mint without a name.
 */
export const KEYGEN_ARGS = Object.freeze({ scope: "api", exp: "30d", name: "openclaw" });

/** Re-mint the token when it has less than this left. */
const TOKEN_RENEW_BEFORE_MS = 7 * 24 * 3600 * 1000;
const THIRTY_DAYS_MS = 30 * 24 * 3600 * 1000;

/**
 * Tokens this plugin minted, shared across module reloads in one process, so a token we put in
 * BITROUTER_API_KEY is not mistaken for one the user set.
 * @type {Map<string, number>} token -> expiry (epoch ms)
 */
const MINTED = (() => {
  const key = Symbol.for("bitrouter-openclaw.minted-tokens");
  /** @type {any} */
  const g = globalThis;
  g[key] ??= new Map();
  return g[key];
})();

/** Exposed for tests: forget tokens minted in this process. */
export function _resetMintedTokens() {
  MINTED.clear();
}

/**
 * The model allowlist of OpenClaw's token: in selective mode with virtual models configured, those
 * names plus direct `provider:model_id` routing — nothing else. With `interceptAllModels` (any model
 * may arrive) or no virtual models, no allowlist.
 * @param {{ interceptAllModels: boolean, models: Record<string, unknown> }} config
 * @returns {string[] | undefined}
 */
export function tokenModels(config) {
  const names = Object.keys(config.models ?? {});
  if (config.interceptAllModels || names.length === 0) return undefined;
  return [...names.sort(), "*:*"];
}

/**
 * The server's error code of a failed tool call, if any.
 * @param {unknown} e
 */
function errorCode(e) {
  return e instanceof ToolError ? e.code : undefined;
}

/** @param {unknown} e */
const msg = (e) => (e instanceof Error ? e.message : String(e));

/**
 * @typedef {{ info: (m: string) => void, warn: (m: string) => void, error: (m: string) => void, debug?: (m: string) => void }} Logger
 * @typedef {{ callTool: (name: string, args?: object, opts?: {timeoutMs?: number}) => Promise<any> }} ToolClient
 */

export class TokenKeeper {
  /**
   * @param {object} o
   * @param {NodeJS.ProcessEnv} o.env                where BITROUTER_API_KEY lives (the gateway's process.env)
   * @param {() => number} o.now
   * @param {() => Logger} o.logger
   * @param {() => import("./config.js").AdapterConfig} o.config
   */
  constructor({ env, now, logger, config }) {
    this.env = env;
    this.now = now;
    this.logger = logger;
    this.config = config;
    this.userKeyLogged = false;
    this.tokenWarned = false;
  }

  /**
   * Makes sure BITROUTER_API_KEY holds a valid BitRouter JWT for OpenClaw's requests: mints one with
   * bitrouter_keygen unless the user set the variable, and renews it a week before it expires.
   * Failures are logged, not thrown: routes still load.
   * @param {ToolClient} client
   * @param {{ save?: boolean }} [opts] save: keep the token as the account's saved token "openclaw"
   */
  async ensure(client, { save = true } = {}) {
    const current = this.env[API_KEY_ENV];
    if (current && !MINTED.has(current)) {
      if (!this.userKeyLogged) {
        this.logger().info(`[bitrouter] ${API_KEY_ENV} is set in the environment; using it instead of minting a token.`);
        this.userKeyLogged = true;
      }
      return;
    }
    if (current && /** @type {number} */ (MINTED.get(current)) - this.now() > TOKEN_RENEW_BEFORE_MS) return;
    try {
      const res = await this.mint(client, save);
      const token = res?.token;
      if (typeof token !== "string" || token.split(".").length !== 3) {
        throw new Error("bitrouter_keygen returned no token");
      }
      const exp = typeof res?.claims?.exp === "number" ? res.claims.exp * 1000 : this.now() + THIRTY_DAYS_MS;
      MINTED.set(token, exp);
      this.env[API_KEY_ENV] = token;
      this.tokenWarned = false;
      this.logger().info(
        `[bitrouter] minted a BitRouter API token for OpenClaw (scope api` +
          (Array.isArray(res?.claims?.models) ? `, models ${res.claims.models.join(" ")}` : "") +
          `, expires ${new Date(exp).toISOString()})` +
          (res?.saved_to ? `; saved to ${res.saved_to}` : ""),
      );
    } catch (e) {
      if (!this.tokenWarned) {
        this.logger().warn(
          `[bitrouter] could not mint a BitRouter API token (${msg(e)}); requests to the bitrouter provider will be ` +
            `refused until one exists. Set ${API_KEY_ENV} yourself to work around this.`,
        );
        this.tokenWarned = true;
      }
    }
  }

  /**
   * One bitrouter_keygen, resolving the two refusals a normal install meets:
   * - `no_active_account` (fresh data directory): creates BitRouter's first signing account, only when
   *   there is none at all, then mints;
   * - `already_exists` (the token saved by an earlier start): removes that saved file and saves the new
   *   one under the same name; if the name is still taken (another process raced us), mints unsaved.
   * @param {ToolClient} client
   * @param {boolean} save
   */
  async mint(client, save) {
    /** @type {Record<string, unknown>} */
    let args = { ...KEYGEN_ARGS };
    if (!save) delete args.name;
    const models = tokenModels(this.config());
    if (models) args.models = models;
    let accountTried = false;
    let removeTried = false;
    for (;;) {
      try {
        return await client.callTool("bitrouter_keygen", args, { timeoutMs: 20000 });
      } catch (e) {
        const code = errorCode(e);
        if (code === "no_active_account" && !accountTried) {
          accountTried = true;
          await this.ensureAccount(client);
          continue;
        }
        if (code === "already_exists" && args.name) {
          if (!removeTried) {
            removeTried = true;
            await client.callTool("bitrouter_keys", { action: "remove", name: args.name }).catch(() => {});
          } else {
            const { name: _name, ...rest } = args;
            args = rest;
          }
          continue;
        }
        throw e;
      }
    }
  }

  /**
   * Creates BitRouter's signing account when it has none (a fresh data directory). Never touches
   * existing accounts: when some exist but none is active, says how to pick one.
   * @param {ToolClient} client
   */
  async ensureAccount(client) {
    const list = await client.callTool("bitrouter_account", { action: "list" });
    const accounts = Array.isArray(list?.accounts) ? list.accounts : [];
    if (accounts.length > 0) {
      throw new Error(
        `BitRouter has ${accounts.length} account(s) but none is active; choose one with the MCP tool ` +
          `bitrouter_account {"action":"set_active","account":0}`,
      );
    }
    const res = await client.callTool("bitrouter_account", { action: "generate" });
    const prefix = typeof res?.changed?.prefix === "string" ? `${res.changed.prefix} ` : "";
    this.logger().info(`[bitrouter] created BitRouter's signing account ${prefix}(there was none); it signs OpenClaw's token`);
  }
}
