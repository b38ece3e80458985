// @ts-check
/**
 * The bitrouter-mcp child process a gateway runs when the plugin has `autoStart`: spawn it on the MCP
 * port with the plugin's config file and data dir, append its output to a log file (keeping the last
 * lines, ANSI-free, for error messages), stop it (SIGTERM, then SIGKILL), and say what its exit means
 * (a busy port, the restart budget). It decides nothing about routes or tokens: the runtime tells it
 * when to start and reacts to its exit.
 */

import { spawn as nodeSpawn } from "node:child_process";
import fs from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { stripVTControlCharacters } from "node:util";

import { PLUGIN_ID, writeServerConfigFile } from "./config.js";

/** At most this many automatic restarts of bitrouter-mcp within RESTART_WINDOW_MS. */
export const MAX_RESTARTS = 3;
export const RESTART_WINDOW_MS = 10 * 60 * 1000;
/** Lines of the child's output kept for error messages. */
const TAIL_LINES = 40;

/** @param {unknown} e */
const msg = (e) => (e instanceof Error ? e.message : String(e));

/**
 * Restarts allowed after crashes: at most {@link MAX_RESTARTS} within {@link RESTART_WINDOW_MS}, each
 * after twice the previous delay.
 */
export class RestartBudget {
  /** @param {number} baseDelayMs */
  constructor(baseDelayMs) {
    this.baseDelayMs = baseDelayMs;
    /** @type {number[]} */
    this.restarts = [];
  }

  /**
   * The delay before the next restart, or undefined when the budget is spent.
   * @param {number} now
   */
  next(now) {
    this.restarts = this.restarts.filter((t) => now - t < RESTART_WINDOW_MS);
    if (this.restarts.length >= MAX_RESTARTS) return undefined;
    const delay = this.baseDelayMs * 2 ** this.restarts.length;
    this.restarts.push(now);
    return delay;
  }
}

/**
 * @typedef {{ info: (m: string) => void, warn: (m: string) => void, error: (m: string) => void, debug?: (m: string) => void }} Logger
 * @typedef {{ configFile: string, dataDir: string, logFile: string }} ChildPaths
 */

/** One bitrouter-mcp child at a time. */
export class ServerProcess {
  /**
   * @param {object} o
   * @param {typeof nodeSpawn} [o.spawn]
   * @param {NodeJS.ProcessEnv} o.env
   * @param {() => number} o.now
   * @param {() => Logger} o.logger
   * @param {number} o.stopTimeoutMs
   * @param {(reason: string) => void} o.onError   it could not run (after spawn: no exit follows)
   * @param {(child: import("node:child_process").ChildProcess, code: number|null, signal: string|null) => void} o.onExit
   */
  constructor({ spawn = nodeSpawn, env, now, logger, stopTimeoutMs, onError, onExit }) {
    this.spawn = spawn;
    this.env = env;
    this.now = now;
    this.logger = logger;
    this.stopTimeoutMs = stopTimeoutMs;
    this.onError = onError;
    this.onExit = onExit;
    /** @type {import("node:child_process").ChildProcess|undefined} */
    this.child = undefined;
    /** @type {string[]} last lines of the child's output */
    this.outputTail = [];
    /** @type {(() => void)|undefined} */
    this.exitHook = undefined;
  }

  /**
   * Writes the server's config file and spawns `bitrouter-mcp serve --http`. Returns the reason when
   * it cannot.
   * @param {{ binary: string, mcpPort: number, paths: ChildPaths, config: import("./config.js").AdapterConfig }} o
   * @returns {{ ok: true } | { ok: false, reason: string }}
   */
  launch({ binary, mcpPort, paths, config }) {
    try {
      writeServerConfigFile(paths.configFile, config);
      fs.mkdirSync(paths.dataDir, { recursive: true, mode: 0o700 });
    } catch (e) {
      return { ok: false, reason: `cannot write ${paths.configFile}: ${msg(e)}` };
    }
    // --exit-with-parent: should OpenClaw die without stopping its services (SIGKILL, crash), the server
    // gets SIGTERM from the kernel and stops its daemon, so nothing is left holding the ports.
    const args = ["serve", "--http", `127.0.0.1:${mcpPort}`, "--config", paths.configFile, "--data-dir", paths.dataDir, "--exit-with-parent"];
    this.logger().info(`[bitrouter] starting ${binary} ${args.join(" ")} (output: ${paths.logFile})`);

    /** @type {fs.WriteStream|undefined} */
    let log;
    try {
      log = fs.createWriteStream(paths.logFile, { flags: "a", mode: 0o600 });
      log.on("error", () => {});
      log.write(`--- ${new Date(this.now()).toISOString()} ${binary} ${args.join(" ")}\n`);
    } catch {
      log = undefined;
    }
    const child = this.spawn(binary, args, { stdio: ["ignore", "pipe", "pipe"], env: this.env });
    this.child = child;
    this.outputTail = [];
    /** @param {Buffer|string} chunk */
    const onOutput = (chunk) => {
      const text = chunk.toString();
      log?.write(text);
      for (const line of stripVTControlCharacters(text).split(/\r?\n/)) {
        if (!line.trim()) continue;
        this.outputTail.push(line);
        if (this.outputTail.length > TAIL_LINES) this.outputTail.shift();
      }
    };
    child.stdout?.on("data", onOutput);
    child.stderr?.on("data", onOutput);
    child.on("error", (e) => {
      this.onError(`cannot run ${binary}: ${msg(e)}`);
      if (child.pid === undefined && this.child === child) {
        // It never started, so no "exit" follows.
        this.child = undefined;
        this.removeExitHook();
      }
    });
    child.on("exit", (code, signal) => {
      log?.end();
      this.removeExitHook();
      if (child !== this.child) return;
      this.child = undefined;
      this.onExit(child, code, signal);
    });
    // If OpenClaw exits without stopping services, do not leave the server behind.
    this.exitHook = () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    };
    process.once("exit", this.exitHook);
    return { ok: true };
  }

  removeExitHook() {
    if (this.exitHook) process.removeListener("exit", this.exitHook);
    this.exitHook = undefined;
  }

  /**
   * What the child's exit means, for the log: how it ended, a port hint, its last output.
   * @param {number|null} code
   * @param {string|null} signal
   * @param {{ port: number, mcpPort: number, logFile?: string }} o
   */
  exitMessage(code, signal, { port, mcpPort, logFile }) {
    const tail = this.outputTail.slice(-10).join("\n  ");
    const portHint = /address already in use|EADDRINUSE|os error 98|os error 48/i.test(tail)
      ? ` A port is already in use: change plugins.entries.${PLUGIN_ID}.config.port (daemon, ${port}) or mcpPort (${mcpPort}).`
      : "";
    return (
      `bitrouter-mcp exited (${signal ? `signal ${signal}` : `code ${code}`}).${portHint}` +
      (tail ? ` Last output:\n  ${tail}` : "") +
      (logFile ? `\nFull output: ${logFile}` : "")
    );
  }

  /** SIGTERM; SIGKILL when it has not exited within the stop timeout. */
  async stop() {
    const child = this.child;
    if (!child) return;
    if (child.exitCode !== null || child.signalCode !== null) {
      this.child = undefined;
      return;
    }
    const exited = new Promise((resolve) => child.once("exit", resolve));
    this.child = undefined; // its exit is ours, not a crash
    child.kill("SIGTERM");
    const timer = new AbortController();
    const timedOut = await Promise.race([
      exited.then(() => false),
      sleep(this.stopTimeoutMs, true, { signal: timer.signal }).catch(() => false),
    ]);
    timer.abort();
    if (timedOut) {
      this.logger().warn(`[bitrouter] bitrouter-mcp did not stop within ${this.stopTimeoutMs} ms of SIGTERM; killing it`);
      child.kill("SIGKILL");
      await exited;
    }
  }
}
