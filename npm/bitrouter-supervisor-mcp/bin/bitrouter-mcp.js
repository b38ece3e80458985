#!/usr/bin/env node
"use strict";
// Runs this host's native bitrouter-mcp (from the platform package) with the same arguments,
// environment, stdio, signals and exit status: on Node with process.execve the launcher is replaced
// by the binary (same pid); elsewhere it is a child whose signals are forwarded and whose exit is
// mirrored.

const { spawn } = require("node:child_process");
const { constants } = require("node:os");
const { findBinary } = require("../lib/binary.js");

let bin;
try {
  bin = findBinary().path;
} catch (e) {
  process.stderr.write(`bitrouter-mcp: ${e.message}\n`);
  process.exit(1);
}
const args = process.argv.slice(2);

if (process.platform !== "win32" && typeof process.execve === "function") {
  // Node ignores SIGXFSZ and an ignored signal stays ignored across execve; a handler resets it.
  process.on("SIGXFSZ", () => {});
  process.execve(bin, [bin, ...args], process.env);
}

const child = spawn(bin, args, { stdio: "inherit" });
child.on("error", (e) => {
  process.stderr.write(`bitrouter-mcp: cannot run ${bin}: ${e.message}\n`);
  process.exit(1);
});
// Forwarded until the child exits, so a second Ctrl-C still reaches it during a graceful stop.
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(sig, () => {
    try {
      child.kill(sig);
    } catch {
      // the child is already gone; its exit event follows
    }
  });
}
child.on("exit", (code, signal) => {
  if (signal) {
    // Die of the same signal; the exit code is the shell's convention should the signal be ignored.
    process.exitCode = 128 + (constants.signals[signal] ?? 0);
    process.removeAllListeners(signal);
    process.kill(process.pid, signal);
  } else {
    process.exit(code ?? 1);
  }
});
