// @ts-check
/**
 * `openclaw models auth login --provider bitrouter`: asks for upstream provider keys (the built-in providers'
 * and those of the plugin's providers config: the variables `bitrouter-mcp auth login` asks for) and hands
 * them to `bitrouter-mcp auth login --data-dir <dir> --stdin`, one `NAME=value` line each, which writes
 * BitRouter's `.env`. Keys go through the child's stdin only: never on a command line, in a log or in
 * OpenClaw's own config.
 */

import { spawn as nodeSpawn } from "node:child_process";
import fs from "node:fs";

import { resolveBinary as defaultResolveBinary } from "./binary.js";
import { PLUGIN_ID, SERVER_FACTS, adapterPaths, envReference, resolveConfig } from "./config.js";

/** How the prompt names a built-in provider (presentation only; the providers themselves are server facts). */
const LABELS = Object.freeze({ openai: "OpenAI", anthropic: "Anthropic", google: "Google", openrouter: "OpenRouter" });

/**
 * The key variables to ask for, the way `bitrouter-mcp auth login` picks them: every built-in provider, then
 * every configured one (by name); a provider whose key is a `${NAME}` reference under NAME, one with a literal
 * key not at all, any other under its env prefix's `<PREFIX>_API_KEY` (its own envPrefix, the built-in's, or
 * its name upper-cased).
 * @param {import("./config.js").AdapterConfig} cfg
 * @returns {{env: string, label: string}[]}
 */
export function loginVars(cfg) {
  const builtins = SERVER_FACTS.builtinProviders;
  const configured = /** @type {Record<string, any>} */ (cfg.providers ?? {});
  const names = [...builtins.map((b) => b.name), ...Object.keys(configured).sort().filter((n) => !builtins.some((b) => b.name === n))];
  /** @type {{env: string, label: string}[]} */
  const out = [];
  for (const name of names) {
    const p = configured[name];
    const builtin = builtins.find((b) => b.name === name);
    const label = /** @type {Record<string, string>} */ (LABELS)[name] ?? name;
    let env;
    if (typeof p?.apiKey === "string") {
      env = envReference(p.apiKey);
      if (!env) continue;
    } else {
      const prefix = typeof p?.envPrefix === "string" ? p.envPrefix : (builtin?.envPrefix ?? name.toUpperCase().replaceAll("-", "_"));
      env = `${prefix}_API_KEY`;
    }
    if (!out.some((v) => v.env === env)) out.push({ env, label });
  }
  return out;
}

/** @param {string} value */
export function validateKey(value) {
  const v = value.trim();
  if (v === "") return undefined;
  if (/\s/.test(v)) return "A key cannot contain spaces or line breaks.";
  return undefined;
}

/**
 * Runs `bitrouter-mcp auth login --data-dir <dir> --stdin` with `NAME=value` lines on stdin.
 * @param {object} o
 * @param {string} o.binary
 * @param {string} o.dataDir
 * @param {[string, string][]} o.entries
 * @param {typeof nodeSpawn} [o.spawn]
 * @param {NodeJS.ProcessEnv} [o.env]
 * @param {number} [o.timeoutMs]
 * @returns {Promise<string>} the command's stdout
 */
export function runAuthLogin({ binary, dataDir, entries, spawn = nodeSpawn, env = process.env, timeoutMs = 30000 }) {
  return new Promise((resolve, reject) => {
    const args = ["auth", "login", "--data-dir", dataDir, "--stdin"];
    const child = spawn(binary, args, { stdio: ["pipe", "pipe", "pipe"], env });
    let out = "";
    let err = "";
    child.stdout?.on("data", (d) => (out += d));
    child.stderr?.on("data", (d) => (err += d));
    const timer = setTimeout(() => {
      child.kill("SIGTERM");
      reject(new Error(`\`${binary} ${args.join(" ")}\` did not finish within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${binary}: ${e.message}`));
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else {
        const detail = err.trim().split("\n").slice(-5).join("\n");
        reject(new Error(`\`${binary} ${args.join(" ")}\` failed (${signal ?? `exit ${code}`})${detail ? `: ${detail}` : ""}`));
      }
    });
    child.stdin?.on("error", () => {});
    child.stdin?.end(entries.map(([k, v]) => `${k}=${v}\n`).join(""));
  });
}

/**
 * @param {object} deps
 * @param {(env?: NodeJS.ProcessEnv) => string} deps.resolveStateDir
 * @param {typeof defaultResolveBinary} [deps.resolveBinary]
 * @param {typeof nodeSpawn} [deps.spawn]
 */
export function createAuthMethod({ resolveStateDir, resolveBinary = defaultResolveBinary, spawn = nodeSpawn }) {
  return {
    id: "provider-keys",
    label: "Upstream provider API keys",
    hint: "Store upstream provider keys in BitRouter's .env (BitRouter also reads them from the environment)",
    kind: /** @type {const} */ ("custom"),
    /** @param {any} ctx ProviderAuthContext */
    run: async (ctx) => {
      const env = ctx?.env ?? process.env;
      const cfg = resolveConfig(ctx?.config?.plugins?.entries?.[PLUGIN_ID]?.config);
      const { dataDir } = adapterPaths(resolveStateDir(env), cfg);
      const prompter = ctx.prompter;
      await prompter.note?.(
        "BitRouter forwards requests to the upstream providers with these keys. They are written to BitRouter's " +
          `.env under ${dataDir}. Leave a field empty to skip it (keys already in the environment keep working).`,
        "BitRouter provider keys",
      );
      const wanted = loginVars(cfg);
      /** @type {[string, string][]} */
      const entries = [];
      for (const { env: name, label } of wanted) {
        const already = env[name] ? " (already set in the environment)" : "";
        const value = await prompter.text({
          message: `${label} API key${already}: ${name}`,
          placeholder: "leave empty to skip",
          sensitive: true,
          validate: validateKey,
        });
        const v = typeof value === "string" ? value.trim() : "";
        if (v) entries.push([name, v]);
      }
      if (entries.length === 0) {
        return { profiles: [], notes: ["No keys entered; BitRouter's .env was not changed."] };
      }
      const bin = resolveBinary({ binaryPath: cfg.binaryPath, env });
      if (!bin.ok) throw new Error(bin.message);
      fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
      await runAuthLogin({ binary: bin.path, dataDir, entries, spawn, env });
      return {
        profiles: [],
        notes: [
          `Saved ${entries.map(([k]) => k).join(", ")} to BitRouter's .env under ${dataDir}.`,
          "Restart the gateway (`openclaw gateway restart`) so the BitRouter daemon loads the new keys.",
        ],
      };
    },
  };
}
