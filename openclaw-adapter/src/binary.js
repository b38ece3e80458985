// @ts-check
/**
 * Finds the `bitrouter-mcp` executable: the configured `binaryPath`, then the one npm installed with this
 * plugin (the `bitrouter-supervisor-mcp` dependency and its platform package, which also carries the
 * pinned daemon), then `bitrouter-mcp` on PATH, then `~/.cargo/bin/bitrouter-mcp`. Only looks at the
 * file system; never downloads or builds anything.
 */

import fs from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";

export const BINARY_NAME = "bitrouter-mcp";

/** The npm package that carries the server (through its per-platform optional dependencies). */
export const SERVER_PACKAGE = "bitrouter-supervisor-mcp";

/** How to get the binary, shown whenever it is missing. */
export const INSTALL_HINT =
  `Reinstall this plugin so npm installs ${SERVER_PACKAGE} and its package for this platform ` +
  "(`openclaw plugins install bitrouter-supervisor-openclaw`), or install it from a clone of the bitrouter-mcp " +
  "repository with `cargo install --path <path-to-bitrouter-mcp-repo>` (or run `make run` there), or set " +
  "plugins.entries.bitrouter.config.binaryPath to the binary's full path.";

/**
 * The server npm installed beside this plugin: `{path}`, `{error}` when the package is there but has no
 * binary for this host, or undefined when the package is not installed at all.
 * @param {NodeJS.Require} req
 * @returns {{ path: string } | { error: string } | undefined}
 */
function fromNpm(req) {
  let server;
  try {
    server = req(SERVER_PACKAGE);
  } catch {
    return undefined;
  }
  try {
    return { path: server.findBinary().path };
  } catch (e) {
    return { error: e instanceof Error ? e.message : String(e) };
  }
}

/**
 * @typedef {{ ok: true, path: string, source: "binaryPath"|"npm"|"PATH"|"cargo" }} BinaryFound
 * @typedef {{ ok: false, message: string, looked: string[] }} BinaryMissing
 * @typedef {BinaryFound | BinaryMissing} BinaryResolution
 */

/** @param {string} p */
function defaultIsExecutable(p) {
  try {
    const st = fs.statSync(p);
    if (!st.isFile()) return false;
    if (process.platform === "win32") return true;
    fs.accessSync(p, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * @param {object} opts
 * @param {string} [opts.binaryPath]   config value (already `~`-expanded)
 * @param {NodeJS.ProcessEnv} [opts.env]
 * @param {string} [opts.home]
 * @param {string} [opts.platform]
 * @param {(p: string) => boolean} [opts.isExecutable]
 * @param {NodeJS.Require} [opts.npmRequire]  resolves the server package (default: from this plugin's location)
 * @returns {BinaryResolution}
 */
export function resolveBinary({
  binaryPath,
  env = process.env,
  home = os.homedir(),
  platform = process.platform,
  isExecutable = defaultIsExecutable,
  npmRequire = createRequire(import.meta.url),
} = {}) {
  const exe = platform === "win32" ? `${BINARY_NAME}.exe` : BINARY_NAME;

  if (binaryPath) {
    if (isExecutable(binaryPath)) return { ok: true, path: binaryPath, source: "binaryPath" };
    // An explicit path that does not work is an error: silently running another binary would surprise.
    return {
      ok: false,
      looked: [binaryPath],
      message:
        `bitrouter-mcp not found at the configured binaryPath ${JSON.stringify(binaryPath)} ` +
        `(missing or not executable). Fix or remove plugins.entries.bitrouter.config.binaryPath. ${INSTALL_HINT}`,
    };
  }

  const looked = [];
  const npm = fromNpm(npmRequire);
  if (npm && "path" in npm && isExecutable(npm.path)) return { ok: true, path: npm.path, source: "npm" };
  looked.push(npm && "path" in npm ? npm.path : `${SERVER_PACKAGE} (npm)`);
  const npmProblem = npm && "error" in npm ? `${npm.error} ` : "";

  const sep = platform === "win32" ? ";" : ":";
  for (const dir of (env.PATH ?? env.Path ?? "").split(sep)) {
    if (!dir) continue;
    const candidate = path.join(dir, exe);
    looked.push(candidate);
    if (isExecutable(candidate)) return { ok: true, path: candidate, source: "PATH" };
  }

  const cargoHome = env.CARGO_HOME ? env.CARGO_HOME : path.join(home, ".cargo");
  const cargoBin = path.join(cargoHome, "bin", exe);
  looked.push(cargoBin);
  if (isExecutable(cargoBin)) return { ok: true, path: cargoBin, source: "cargo" };

  return {
    ok: false,
    looked,
    message:
      `bitrouter-mcp was not found: binaryPath is not set, the ${SERVER_PACKAGE} npm package has none for this host, ` +
      `it is not on PATH, and ${cargoBin} does not exist. ${npmProblem}${INSTALL_HINT} Until then BitRouter routing is off and OpenClaw uses its normal providers.`,
  };
}
