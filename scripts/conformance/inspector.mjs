// Drives the MCP Inspector CLI against bitrouter-mcp over stdio and streamable HTTP, in the legacy
// (initialize handshake) and modern (2026-07-28, stateless) protocol eras, and checks the answers.
// Called by run.sh; writes its verdicts to $INSPECT_OUT/inspector.json and prints one line each.
//
// Env: INSPECT_NODE, INSPECT_JS (Inspector launcher), INSPECT_HTTP_URL, INSPECT_BIN (server),
//      INSPECT_CFG (server config), INSPECT_STDIO_DATA (data-dir prefix for stdio), INSPECT_OUT,
//      INSPECT_HOME (HOME for the Inspector itself).
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const NODE = env('INSPECT_NODE');
const INSPECTOR = env('INSPECT_JS');
const HTTP_URL = env('INSPECT_HTTP_URL');
const BIN = env('INSPECT_BIN');
const CFG = env('INSPECT_CFG');
const STDIO_DATA = env('INSPECT_STDIO_DATA');
const OUT = env('INSPECT_OUT');
const LOGS = join(OUT, 'inspector');
const REAL_HOME = process.env.HOME;
const INSPECTOR_HOME = env('INSPECT_HOME');
mkdirSync(LOGS, { recursive: true });

const TOOLS = ['bitrouter_account', 'bitrouter_keygen', 'bitrouter_keys', 'bitrouter_status', 'bitrouter_usage'];
const URIS = ['bitrouter://metrics', 'bitrouter://routes', 'bitrouter://usage', 'ui://bitrouter/dashboard'];
const CALL_TIMEOUT_MS = 60_000;

function target(transport, era) {
  if (transport === 'http') return ['--transport', 'http', '--server-url', HTTP_URL];
  const data = `${STDIO_DATA}-${era}`;
  mkdirSync(data, { recursive: true });
  // The Inspector runs with HOME in the scratch dir (it keeps state under ~/.mcp-inspector); the
  // server it spawns gets the caller's HOME back.
  const home = REAL_HOME ? ['-e', `HOME=${REAL_HOME}`] : [];
  return ['--transport', 'stdio', ...home, '--', BIN, 'serve', '--stdio', '--data-dir', data, '--config', CFG];
}

let seq = 0;
function inspect(transport, era, args) {
  const argv = [INSPECTOR, '--cli', '--format', 'json', '--stored-auth-only', '--protocol-era', era, ...args, ...target(transport, era)];
  const log = join(LOGS, `${String(++seq).padStart(3, '0')}-${transport}-${era}.log`);
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(NODE, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, HOME: INSPECTOR_HOME } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), CALL_TIMEOUT_MS);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const ms = Date.now() - started;
      writeFileSync(log, `$ inspector ${argv.slice(2).join(' ')}\nexit ${code}${signal ? ` (${signal})` : ''}, ${ms} ms\n--- stdout\n${stdout}\n--- stderr\n${stderr}\n`);
      let json;
      try {
        json = JSON.parse(stdout);
      } catch {
        json = undefined;
      }
      resolve({ code, signal, stdout, stderr, json, ms, log });
    });
  });
}

const parseJson = (text) => {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
};
const textOf = (result) => (result?.content ?? []).filter((c) => c.type === 'text').map((c) => c.text).join('\n');

// Each check: [name, inspector args, verdict(run) -> string problem | '' | {ok, note}]
function checks(transport, era) {
  const tokenName = `conformance-${transport}-${era}`;
  const call = (tool, args) => ['--method', 'tools/call', '--tool-name', tool, '--tool-args-json', JSON.stringify(args)];
  const okCall = (r) => {
    if (r.code !== 0) return `exit ${r.code}`;
    if (r.json?.result?.isError) return `isError: ${textOf(r.json.result).slice(0, 200)}`;
    if (!r.json?.result?.structuredContent) return 'no structuredContent';
    return '';
  };
  return [
    ['tools/list: the four tools, schemas portable (--strict)', ['--method', 'tools/list', '--strict'], (r) => {
      if (r.code === 6) return 'Inspector --strict found error-severity schema portability problems (see log)';
      if (r.code !== 0) return `exit ${r.code}`;
      const tools = r.json?.result?.tools ?? [];
      const names = tools.map((t) => t.name).sort();
      if (JSON.stringify(names) !== JSON.stringify(TOOLS)) return `tools are ${JSON.stringify(names)}`;
      for (const t of tools) {
        if (t.inputSchema?.type !== 'object') return `${t.name}: inputSchema.type is not "object"`;
        if (t.outputSchema?.type !== 'object') return `${t.name}: no object outputSchema`;
      }
      const warnings = (r.stderr.match(/^Warning: tool /gm) ?? []).length;
      return { ok: true, note: `${warnings} portability warnings` };
    }],
    ['tools/call bitrouter_status: structured daemon', call('bitrouter_status', {}), (r) => {
      const p = okCall(r);
      if (p) return p;
      const s = r.json.result.structuredContent;
      if (typeof s.daemon !== 'object' || s.daemon === null) return 'structuredContent.daemon missing';
      if (parseJson(textOf(r.json.result))?.daemon === undefined) return 'text content is not the same JSON';
      return { ok: true, note: `daemon.state=${s.daemon.state}` };
    }],
    ['tools/call bitrouter_account action=generate', call('bitrouter_account', { action: 'generate' }), (r) => {
      const p = okCall(r);
      if (p) return p;
      const s = r.json.result.structuredContent;
      if (!s.changed?.public_key || !Array.isArray(s.accounts) || s.accounts.length < 1) return `unexpected result ${JSON.stringify(s).slice(0, 200)}`;
      return '';
    }],
    [`tools/call bitrouter_keygen exp=1h name=${tokenName}`, call('bitrouter_keygen', { exp: '1h', name: tokenName }), (r) => {
      const p = okCall(r);
      if (p) return p;
      const s = r.json.result.structuredContent;
      if (typeof s.token !== 'string' || s.token.split('.').length !== 3) return 'no JWT in structuredContent.token';
      return '';
    }],
    ['tools/call bitrouter_keys action=list: sees the token', call('bitrouter_keys', { action: 'list' }), (r) => {
      const p = okCall(r);
      if (p) return p;
      const tokens = r.json.result.structuredContent.tokens;
      if (!Array.isArray(tokens)) return 'structuredContent.tokens is not an array';
      if (!tokens.some((t) => t.name === tokenName)) return `token ${tokenName} not listed: ${JSON.stringify(tokens.map((t) => t.name))}`;
      if (JSON.stringify(tokens).includes('eyJ')) return 'token text leaked into keys list';
      return '';
    }],
    ['tools/call bitrouter_keygen exp=5w: tool error naming `exp`', call('bitrouter_keygen', { exp: '5w' }), (r) => {
      // Inspector exits 5 for a result with isError: true (a JSON-RPC error would be another code).
      if (r.code !== 5) return `exit ${r.code}, expected 5 (tool error)`;
      if (r.json?.result?.isError !== true) return 'result.isError is not true';
      const text = textOf(r.json.result);
      if (!text.includes('exp')) return `error text does not mention exp: ${text.slice(0, 200)}`;
      return '';
    }],
    ['resources/list: routes and metrics', ['--method', 'resources/list'], (r) => {
      if (r.code !== 0) return `exit ${r.code}`;
      const uris = (r.json?.result?.resources ?? []).map((x) => x.uri).sort();
      if (JSON.stringify(uris) !== JSON.stringify(URIS)) return `resources are ${JSON.stringify(uris)}`;
      return '';
    }],
    ['resources/read bitrouter://routes: JSON with models', ['--method', 'resources/read', '--uri', 'bitrouter://routes'], (r) => {
      if (r.code !== 0) return `exit ${r.code}`;
      const c = r.json?.result?.contents?.[0];
      if (c?.uri !== 'bitrouter://routes') return `contents[0].uri is ${c?.uri}`;
      if (c.mimeType !== 'application/json') return `mimeType ${c.mimeType}`;
      const doc = parseJson(c.text);
      if (!doc || !Array.isArray(doc.models)) return 'text is not JSON with a models array';
      return '';
    }],
    ['resources/read bitrouter://metrics: JSON', ['--method', 'resources/read', '--uri', 'bitrouter://metrics'], (r) => {
      if (r.code !== 0) return `exit ${r.code}`;
      const c = r.json?.result?.contents?.[0];
      if (c?.uri !== 'bitrouter://metrics' || !parseJson(c.text ?? '')) return 'no JSON contents for bitrouter://metrics';
      return '';
    }],
    ['resources/read ui://bitrouter/dashboard: an MCP App (HTML)', ['--method', 'resources/read', '--uri', 'ui://bitrouter/dashboard'], (r) => {
      if (r.code !== 0) return `exit ${r.code}`;
      const c = r.json?.result?.contents?.[0];
      if (c?.mimeType !== 'text/html;profile=mcp-app') return `mimeType ${c?.mimeType}`;
      if (!(c.text ?? '').startsWith('<!doctype html>')) return 'text is not an HTML document';
      return '';
    }],
    ['resources/read unknown URI: an error', ['--method', 'resources/read', '--uri', 'bitrouter://no-such-resource'], (r) => {
      if (r.code === 0) return 'succeeded';
      if (!r.stderr.includes('bitrouter://no-such-resource') && !r.stdout.includes('bitrouter://no-such-resource')) return 'error does not name the URI';
      return '';
    }],
  ];
}

async function lane(combos) {
  const results = [];
  for (const [transport, era] of combos) {
    for (const [name, args, verdict] of checks(transport, era)) {
      const r = await inspect(transport, era, args);
      let v;
      try {
        v = verdict(r);
      } catch (e) {
        v = `check crashed: ${e.message}`;
      }
      const ok = typeof v === 'object' ? v.ok : v === '';
      const excerpt = ok ? undefined : `exit ${r.code}; stdout: ${r.stdout.slice(0, 400)}; stderr: ${r.stderr.slice(-400)}`;
      results.push({ transport, era, name, ok, note: typeof v === 'object' ? v.note : v, ms: r.ms, log: r.log, excerpt });
    }
  }
  return results;
}

// stdio lanes have their own data dirs; the one HTTP server is shared, so its eras run in sequence
// (bitrouter_keys lists the tokens of the active account, which bitrouter_account changes).
const started = Date.now();
const lanes = await Promise.all([
  lane([['stdio', 'legacy']]),
  lane([['stdio', 'modern']]),
  lane([['http', 'legacy'], ['http', 'modern']]),
]);
const order = ['stdio/legacy', 'stdio/modern', 'http/legacy', 'http/modern'];
const results = lanes.flat().sort((a, b) => order.indexOf(`${a.transport}/${a.era}`) - order.indexOf(`${b.transport}/${b.era}`));
for (const r of results) {
  const line = `${r.ok ? 'PASS' : 'FAIL'}  inspector ${`${r.transport}/${r.era}`.padEnd(13)} ${r.name}${r.note ? ` (${r.note})` : ''}  ${r.ms} ms`;
  console.log(r.ok ? line : `${line}\n      ${r.excerpt.replace(/\s+/g, ' ')}`);
}
console.log(`inspector: ${results.filter((r) => r.ok).length}/${results.length} checks passed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
writeFileSync(join(OUT, 'inspector.json'), JSON.stringify(results, null, 2));
process.exit(results.every((r) => r.ok) ? 0 : 1);
