"use strict";
/**
 * Finds the native `bitrouter-mcp` of this host: the platform package that npm installed as an
 * optional dependency (chosen by its `os`, `cpu` and `libc` fields), e.g.
 * `bitrouter-supervisor-mcp-linux-x64-gnu/bin/bitrouter-mcp`, with the pinned `bitrouter` daemon
 * beside it (the server looks there first). Used by the `bitrouter-mcp` launcher and by the
 * OpenClaw plugin; only reads the file system.
 */

const fs = require("node:fs");
const path = require("node:path");

const TARGETS = require("../targets.json");
const MAIN_PACKAGE = require("../package.json").name;

/** "glibc", "musl" or undefined (not Linux / unknown), the way npm's `libc` field names them. */
function hostLibc(platform = process.platform) {
  if (platform !== "linux") return undefined;
  const report = process.report?.getReport?.();
  if (report?.header?.glibcVersionRuntime) return "glibc";
  if (Array.isArray(report?.sharedObjects) && report.sharedObjects.some((f) => String(f).includes("musl"))) return "musl";
  return undefined;
}

/** npm name of a target's platform package. */
function platformPackageName(target) {
  return `${MAIN_PACKAGE}-${TARGETS[target].suffix}`;
}

/** The Rust target triple whose package fits this host, or undefined. */
function hostTarget({ platform = process.platform, arch = process.arch, libc = hostLibc(platform) } = {}) {
  return Object.keys(TARGETS).find((t) => {
    const d = TARGETS[t];
    return d.os === platform && d.cpu === arch && (d.libc === undefined || d.libc === libc);
  });
}

/** What to do when there is no package for this host. */
const FROM_SOURCE =
  "Build it from source instead (needs Rust): clone the bitrouter-mcp repository and run `cargo install --path .`, " +
  "then `bitrouter-mcp daemon install`.";

/**
 * @param {{platform?: string, arch?: string, libc?: string, require?: NodeJS.Require}} [host]
 * @returns {{ path: string, daemon: string, package: string, target: string }}
 * @throws {Error} naming the package and what to do, when there is none for this host or npm left it out
 */
function findBinary(host = {}) {
  const platform = host.platform ?? process.platform;
  const arch = host.arch ?? process.arch;
  const libc = host.libc ?? hostLibc(platform);
  const target = hostTarget({ platform, arch, libc });
  if (!target) {
    const supported = Object.values(TARGETS)
      .map((d) => `${d.os}-${d.cpu}${d.libc ? ` (${d.libc})` : ""}`)
      .join(", ");
    throw new Error(`${MAIN_PACKAGE} has no binary for ${platform}-${arch}${libc ? ` (${libc})` : ""}; packages exist for ${supported}. ${FROM_SOURCE}`);
  }
  const pkg = platformPackageName(target);
  const req = host.require ?? require;
  let dir;
  try {
    dir = path.dirname(req.resolve(`${pkg}/package.json`));
  } catch {
    throw new Error(
      `the optional dependency ${pkg} is not installed (npm skips optional dependencies with --omit=optional or ` +
        `--no-optional, and after a failed download). Reinstall ${MAIN_PACKAGE} with optional dependencies. ${FROM_SOURCE}`,
    );
  }
  const exe = platform === "win32" ? ".exe" : "";
  const bin = path.join(dir, "bin", `bitrouter-mcp${exe}`);
  if (!fs.existsSync(bin)) throw new Error(`${pkg} is installed at ${dir} but has no bin/bitrouter-mcp${exe}; reinstall ${MAIN_PACKAGE}.`);
  return { path: bin, daemon: path.join(dir, "bin", `bitrouter${exe}`), package: pkg, target };
}

module.exports = { MAIN_PACKAGE, TARGETS, findBinary, hostLibc, hostTarget, platformPackageName };
