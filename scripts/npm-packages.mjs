#!/usr/bin/env node
// Builds the npm packages into target/npm/ (tarballs, as `npm publish` would upload them):
//
//   bitrouter-supervisor-mcp-<V>.tgz                 main package: the `bitrouter-mcp` launcher and
//                                                    optionalDependencies on the platform packages
//   bitrouter-supervisor-mcp-<suffix>-<V>.tgz        one per target: stripped bitrouter-mcp + the pinned
//                                                    bitrouter 0.11.0 daemon, its Apache-2.0 licence
//   bitrouter-supervisor-openclaw-<V>.tgz            the OpenClaw plugin, depending on the main package
//   packages.json                                    what was built: sizes, strip figures, linked libraries
//
// Usage: node scripts/npm-packages.mjs [--no-build] [TARGET...]
//   TARGET   Rust target triples from npm/bitrouter-supervisor-mcp/targets.json (default: this host).
//   The version is Cargo.toml's. Binaries: this host's target is built here (cargo profile
//   $NPM_PROFILE, default `dist`) with the daemon from scripts/install-bitrouter.sh; for any other
//   target (a CI matrix builds each natively) put them in $NPM_BINARIES_DIR/<TARGET>/ as
//   bitrouter-mcp[.exe] and bitrouter[.exe], and pass --no-build.
// The main package lists exactly the targets packaged in this run.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const MAIN_SRC = path.join(REPO, "npm", "bitrouter-supervisor-mcp");
const ADAPTER_SRC = path.join(REPO, "openclaw-adapter");
const OUT = path.join(REPO, "target", "npm");
const STAGE = path.join(OUT, "stage");
const TARGETS = JSON.parse(fs.readFileSync(path.join(MAIN_SRC, "targets.json"), "utf8"));
const MAIN = JSON.parse(fs.readFileSync(path.join(MAIN_SRC, "package.json"), "utf8")).name;
const PINNED_BITROUTER = "0.11.0";
const PROFILE = process.env.NPM_PROFILE || "dist";

const die = (msg) => {
  console.error(`npm-packages: ${msg}`);
  process.exit(1);
};
const log = (msg) => console.error(`npm-packages: ${msg}`);
const run = (cmd, args, opts = {}) => execFileSync(cmd, args, { cwd: REPO, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], ...opts });

const cargoToml = fs.readFileSync(path.join(REPO, "Cargo.toml"), "utf8");
const VERSION = cargoToml.match(/^\[package\][^[]*?^version\s*=\s*"([^"]+)"/ms)?.[1] ?? die("no [package] version in Cargo.toml");

const argv = process.argv.slice(2);
const build = !argv.includes("--no-build");
let targets = argv.filter((a) => !a.startsWith("--"));
const host = (() => {
  try {
    return run("rustc", ["-vV"]).match(/^host: (\S+)/m)?.[1];
  } catch {
    return undefined;
  }
})();
if (targets.length === 0) targets = [host ?? die("no target given and no rustc to tell this host's target")];
for (const t of targets) if (!TARGETS[t]) die(`unknown target ${t} (known: ${Object.keys(TARGETS).join(", ")})`);

fs.rmSync(STAGE, { recursive: true, force: true });
fs.mkdirSync(STAGE, { recursive: true });
for (const f of fs.readdirSync(OUT)) if (f.endsWith(".tgz")) fs.rmSync(path.join(OUT, f));

/** Copies `files` (npm `files` entries) of `src` into `dest`. */
function copyFiles(src, dest, files) {
  for (const f of files) fs.cpSync(path.join(src, f), path.join(dest, f), { recursive: true });
}
const writeJson = (p, v) => fs.writeFileSync(p, `${JSON.stringify(v, null, 2)}\n`);

const size = (n) => (n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${(n / 1e3).toFixed(1)} kB`);

/** `npm pack` of a staged package into target/npm; returns what npm reports. */
function pack(dir) {
  const [info] = JSON.parse(run("npm", ["pack", "--json", "--pack-destination", OUT], { cwd: dir }));
  log(`${info.filename}: ${size(info.size)} packed, ${size(info.unpackedSize)} unpacked`);
  return { name: info.name, file: info.filename, size: info.size, unpackedSize: info.unpackedSize };
}

/** The pinned daemon's crate source (for its licence and NOTICE), if cargo downloaded it. */
function bitrouterCrateSource() {
  const registry = path.join(process.env.CARGO_HOME || path.join(os.homedir(), ".cargo"), "registry", "src");
  if (!fs.existsSync(registry)) return undefined;
  for (const index of fs.readdirSync(registry)) {
    const dir = path.join(registry, index, `bitrouter-${PINNED_BITROUTER}`);
    if (fs.existsSync(path.join(dir, "Cargo.toml"))) return dir;
  }
  return undefined;
}

/** Licence text and NOTICE for the bitrouter binary: the crate's own files, else the Apache-2.0 text. */
function bitrouterLicences(dest) {
  fs.mkdirSync(dest, { recursive: true });
  const crate = bitrouterCrateSource();
  const own = crate ? fs.readdirSync(crate).filter((f) => /^(LICEN[CS]E|NOTICE|COPYING)/i.test(f)) : [];
  for (const f of own) fs.copyFileSync(path.join(crate, f), path.join(dest, f));
  if (!own.some((f) => /^LICEN[CS]E/i.test(f))) fs.copyFileSync(path.join(REPO, "npm", "licenses", "Apache-2.0.txt"), path.join(dest, "LICENSE"));
  if (!own.some((f) => /^NOTICE/i.test(f))) {
    const authors = crate ? fs.readFileSync(path.join(crate, "Cargo.toml"), "utf8").match(/^authors\s*=\s*\[([^\]]*)\]/m)?.[1] : undefined;
    fs.writeFileSync(
      path.join(dest, "NOTICE"),
      `bin/bitrouter is BitRouter ${PINNED_BITROUTER} (https://crates.io/crates/bitrouter, https://github.com/bitrouter/bitrouter),\n` +
        `${authors ? `by ${authors.replace(/"/g, "").trim()}, ` : ""}licensed under the Apache License, Version 2.0 (LICENSE in this folder).\n` +
        `It is redistributed unmodified, built from the published crate with \`cargo install bitrouter --version ${PINNED_BITROUTER}\n` +
        `--locked --no-default-features --features sqlite\` and stripped of symbols. The crate ships no NOTICE file of its own.\n`,
    );
  }
  return own;
}

/** Shared libraries a Linux binary needs (from `ldd`), or undefined elsewhere. */
function neededLibraries(file) {
  if (os.platform() !== "linux") return undefined;
  try {
    return run("ldd", [file])
      .split("\n")
      .map((l) => l.trim().split(/\s+/)[0])
      .filter(Boolean);
  } catch {
    return undefined;
  }
}

/** Strips a copy when this host's `strip` can (same OS family); returns [before, after] bytes. */
function stripInPlace(file, target) {
  const before = fs.statSync(file).size;
  const sameOs = TARGETS[target].os === process.platform;
  if (sameOs && process.platform !== "win32") run("strip", process.platform === "darwin" ? ["-x", file] : [file]);
  else log(`not stripping ${path.basename(file)} for ${target} on ${process.platform} (strip on its own platform)`);
  return [before, fs.statSync(file).size];
}

/** This host's binaries, built or found here. */
function hostBinaries() {
  if (build) {
    log(`cargo build --locked --profile ${PROFILE} --bin bitrouter-mcp`);
    const t0 = Date.now();
    execFileSync("cargo", ["build", "--locked", "--profile", PROFILE, "--bin", "bitrouter-mcp"], { cwd: REPO, stdio: "inherit" });
    log(`built in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  }
  const profileDir = PROFILE === "dev" ? "debug" : PROFILE;
  const server = path.join(REPO, "target", profileDir, "bitrouter-mcp");
  const daemon = run(path.join(REPO, "scripts", "install-bitrouter.sh"), []).trim().split("\n").at(-1);
  return { server, daemon };
}

const summary = { version: VERSION, profile: PROFILE, targets, packages: [], binaries: [] };

for (const target of targets) {
  const t = TARGETS[target];
  const exe = t.os === "win32" ? ".exe" : "";
  let src;
  if (process.env.NPM_BINARIES_DIR) {
    const dir = path.join(process.env.NPM_BINARIES_DIR, target);
    src = { server: path.join(dir, `bitrouter-mcp${exe}`), daemon: path.join(dir, `bitrouter${exe}`) };
  } else if (target === host) {
    src = hostBinaries();
  } else {
    die(`${target} is not this host (${host}): build it on its own platform and pass its binaries in NPM_BINARIES_DIR/${target}/`);
  }
  for (const f of Object.values(src)) if (!fs.existsSync(f)) die(`missing binary ${f}`);

  const name = `${MAIN}-${t.suffix}`;
  const dir = path.join(STAGE, name);
  fs.mkdirSync(path.join(dir, "bin"), { recursive: true });
  for (const [role, file] of Object.entries(src)) {
    const dest = path.join(dir, "bin", `${role === "server" ? "bitrouter-mcp" : "bitrouter"}${exe}`);
    fs.copyFileSync(file, dest);
    fs.chmodSync(dest, 0o755);
    const [before, after] = stripInPlace(dest, target);
    const needed = neededLibraries(dest);
    // Users' machines have no promise of OpenSSL (or of one ABI of it): TLS must be built in (rustls).
    const openssl = (needed ?? []).filter((l) => /libssl|libcrypto/.test(l));
    if (openssl.length) die(`${dest} links ${openssl.join(", ")}: it would not run on a Linux without that OpenSSL`);
    summary.binaries.push({ target, binary: path.basename(dest), from: path.relative(REPO, file).startsWith("..") ? file : path.relative(REPO, file), before, after, needed });
  }
  const own = bitrouterLicences(path.join(dir, "licenses", "bitrouter"));
  fs.writeFileSync(
    path.join(dir, "README.md"),
    `# ${name}\n\nThe ${t.os}-${t.cpu}${t.libc ? ` (${t.libc})` : ""} binaries of [${MAIN}](https://www.npmjs.com/package/${MAIN}): ` +
      `\`bin/bitrouter-mcp\` (MIT) and the pinned BitRouter ${PINNED_BITROUTER} daemon \`bin/bitrouter\` ` +
      `(Apache-2.0, see \`licenses/bitrouter/\`${own.length ? "" : "; the crate ships no NOTICE"}). ` +
      `Install ${MAIN}, not this package: npm picks this one through its \`os\`/\`cpu\`${t.libc ? "/`libc`" : ""} fields.\n`,
  );
  writeJson(path.join(dir, "package.json"), {
    name,
    version: VERSION,
    description: `${t.os}-${t.cpu}${t.libc ? ` ${t.libc}` : ""} binaries of ${MAIN}: bitrouter-mcp and the pinned bitrouter ${PINNED_BITROUTER} daemon`,
    license: "MIT AND Apache-2.0",
    os: [t.os],
    cpu: [t.cpu],
    ...(t.libc ? { libc: [t.libc] } : {}),
    files: ["bin/", "licenses/", "README.md"],
    preferUnplugged: true,
  });
  summary.packages.push(pack(dir));
}

// Main package: the launcher, with exactly the packaged targets as optional dependencies.
{
  const dir = path.join(STAGE, MAIN);
  const pkg = JSON.parse(fs.readFileSync(path.join(MAIN_SRC, "package.json"), "utf8"));
  fs.mkdirSync(dir, { recursive: true });
  copyFiles(MAIN_SRC, dir, pkg.files);
  const { name, description, ...rest } = pkg;
  writeJson(path.join(dir, "package.json"), {
    name,
    version: VERSION,
    description,
    ...rest,
    optionalDependencies: Object.fromEntries(targets.map((t) => [`${MAIN}-${TARGETS[t].suffix}`, VERSION])),
  });
  summary.packages.unshift(pack(dir));
}

// The OpenClaw plugin, at the same version, depending on exactly this main package. The source
// lists it as optional so a linked checkout loads without it (OpenClaw refuses a plugin whose
// required dependency is missing); the published plugin requires it.
{
  const { optionalDependencies: _optional, ...pkg } = JSON.parse(fs.readFileSync(path.join(ADAPTER_SRC, "package.json"), "utf8"));
  const dir = path.join(STAGE, pkg.name);
  fs.mkdirSync(dir, { recursive: true });
  copyFiles(ADAPTER_SRC, dir, pkg.files);
  writeJson(path.join(dir, "package.json"), { ...pkg, version: VERSION, dependencies: { ...pkg.dependencies, [MAIN]: VERSION } });
  const manifest = JSON.parse(fs.readFileSync(path.join(ADAPTER_SRC, "openclaw.plugin.json"), "utf8"));
  writeJson(path.join(dir, "openclaw.plugin.json"), { ...manifest, version: VERSION });
  summary.packages.push(pack(dir));
}

fs.rmSync(STAGE, { recursive: true, force: true });
writeJson(path.join(OUT, "packages.json"), summary);
for (const b of summary.binaries) log(`${b.target} ${b.binary}: ${(b.before / 1e6).toFixed(1)} MB -> ${(b.after / 1e6).toFixed(1)} MB stripped`);
console.log(OUT);
