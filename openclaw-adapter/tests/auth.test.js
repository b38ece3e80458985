// `openclaw models auth login --provider bitrouter`: the prompts, and the keys reaching
// `bitrouter-mcp auth login --data-dir <dir> --stdin` on stdin (a real child process here: a script that
// records its arguments and stdin).

import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";

import { createAuthMethod, loginVars, runAuthLogin, validateKey } from "../src/auth.js";
import { resolveConfig } from "../src/config.js";
import { tempDir } from "./helpers/fakes.js";

/** A stand-in bitrouter-mcp that writes argv and stdin to <dir>/record.json and exits with `code`. */
function recordingBinary(dir, code = 0) {
  const bin = path.join(dir, "bitrouter-mcp");
  const record = path.join(dir, "record.json");
  fs.writeFileSync(
    bin,
    `#!${process.execPath}\n` +
      `let input = "";\n` +
      `process.stdin.on("data", (d) => (input += d));\n` +
      `process.stdin.on("end", () => {\n` +
      `  require("fs").writeFileSync(${JSON.stringify(record)}, JSON.stringify({ argv: process.argv.slice(2), input }));\n` +
      `  if (${code}) process.stderr.write("error: cannot write .env\\n");\n` +
      `  process.exit(${code});\n` +
      `});\n`,
    { mode: 0o755 },
  );
  // The script uses require: keep it CommonJS even inside this ESM package.
  fs.writeFileSync(path.join(dir, "package.json"), '{"type":"commonjs"}');
  return { bin, record };
}

function prompter(answers) {
  const asked = [];
  return {
    asked,
    notes: [],
    async note(m) {
      this.notes.push(m);
    },
    async text(params) {
      asked.push(params);
      const a = answers.shift() ?? "";
      assert.equal(params.validate(a), undefined, `answer ${a} valid`);
      return a;
    },
  };
}

describe("provider auth method", () => {
  it("prompts for the built-in providers' keys (hidden) and pipes NAME=value lines to auth login --stdin", async () => {
    const dir = tempDir();
    const stateDir = path.join(dir, "state");
    const { bin, record } = recordingBinary(dir);
    const method = createAuthMethod({
      resolveStateDir: () => stateDir,
      resolveBinary: () => ({ ok: true, path: bin, source: "binaryPath" }),
    });
    assert.equal(method.kind, "custom");
    const p = prompter(["sk-openai", "", "g-key"]);
    const result = await method.run({ config: {}, env: {}, prompter: p });
    assert.deepEqual(p.asked.map((q) => q.sensitive), [true, true, true, true]);
    assert.match(p.asked[0].message, /OpenAI.*OPENAI_API_KEY/);
    assert.match(p.asked[1].message, /Anthropic.*ANTHROPIC_API_KEY/);
    assert.match(p.asked[2].message, /Google.*GOOGLE_API_KEY/);
    assert.match(p.asked[3].message, /OpenRouter.*OPENROUTER_API_KEY/, "the server's fourth built-in");
    const rec = JSON.parse(fs.readFileSync(record, "utf8"));
    const dataDir = path.join(stateDir, "bitrouter", "data");
    assert.deepEqual(rec.argv, ["auth", "login", "--data-dir", dataDir, "--stdin"]);
    assert.equal(rec.input, "OPENAI_API_KEY=sk-openai\nGOOGLE_API_KEY=g-key\n");
    assert.deepEqual(result.profiles, []);
    assert.match(result.notes.join("\n"), /Saved OPENAI_API_KEY, GOOGLE_API_KEY/);
    assert.doesNotMatch(JSON.stringify(result), /sk-openai/, "keys are not echoed back");
  });

  it("asks for the key a provider names as ${VAR} instead of its default one, and uses the configured dataDir", async () => {
    const dir = tempDir();
    const { bin, record } = recordingBinary(dir);
    const method = createAuthMethod({ resolveStateDir: () => dir, resolveBinary: () => ({ ok: true, path: bin, source: "PATH" }) });
    const config = {
      plugins: {
        entries: {
          bitrouter: {
            config: {
              dataDir: path.join(dir, "br"),
              providers: { openrouter: { derives: "openai", apiKey: "${MY_OR_KEY}" } },
            },
          },
        },
      },
    };
    const p = prompter(["", "", "", "or-key"]);
    await method.run({ config, env: {}, prompter: p });
    assert.equal(p.asked.length, 4);
    assert.match(p.asked[3].message, /OpenRouter.*MY_OR_KEY/);
    const rec = JSON.parse(fs.readFileSync(record, "utf8"));
    assert.equal(rec.argv[3], path.join(dir, "br"));
    assert.equal(rec.input, "MY_OR_KEY=or-key\n");
  });

  it("writes nothing when every field is left empty", async () => {
    const method = createAuthMethod({
      resolveStateDir: () => "/unused",
      resolveBinary: () => {
        throw new Error("must not look for the binary");
      },
    });
    const result = await method.run({ config: {}, env: {}, prompter: prompter([]) });
    assert.match(result.notes[0], /not changed/);
  });

  it("fails with the install hint when bitrouter-mcp is missing", async () => {
    const method = createAuthMethod({
      resolveStateDir: () => tempDir(),
      resolveBinary: () => ({ ok: false, looked: [], message: "bitrouter-mcp was not found ... cargo install --path <repo>" }),
    });
    await assert.rejects(method.run({ config: {}, env: {}, prompter: prompter(["k"]) }), /cargo install --path/);
  });

  it("surfaces the command's error output when it fails", async () => {
    const dir = tempDir();
    const { bin } = recordingBinary(dir, 3);
    await assert.rejects(runAuthLogin({ binary: bin, dataDir: dir, entries: [["OPENAI_API_KEY", "x"]] }), /failed \(exit 3\): error: cannot write \.env/);
  });

  it("rejects keys with whitespace and asks for a custom provider's key under its prefix", () => {
    assert.equal(validateKey(""), undefined);
    assert.equal(validateKey(" sk-1 "), undefined);
    assert.match(validateKey("sk 1"), /spaces/);
    assert.match(validateKey("a\nB=c"), /line breaks/);
    const cfg = resolveConfig({
      providers: { a: { derives: "openai", apiKey: "${A_KEY}" }, b: { derives: "openai", apiKey: "literal" }, c: { derives: "google" }, o: { derives: "openai", apiKey: "${OPENAI_API_KEY}" } },
    });
    assert.deepEqual(
      loginVars(cfg).map((v) => v.env),
      ["OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GOOGLE_API_KEY", "OPENROUTER_API_KEY", "A_KEY", "C_API_KEY"],
      "a literal key is not asked for, a variable only once",
    );
  });
});
