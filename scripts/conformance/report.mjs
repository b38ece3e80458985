// Judges a run of run.sh: the Inspector checks ($REPORT_OUT/inspector.json) and the conformance
// suite's per-scenario results ($REPORT_OUT/suite/<run>/server-<scenario>-<time>/checks.json)
// against expected-failures.txt. Prints the per-scenario table, unexpected failures, expected
// failures that now pass, warnings and timings, and ends with the line "N passed, N failed".
// Exits 1 when anything failed unexpectedly (or, with REPORT_STRICT=1, an expected failure passed).
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const OUT = process.env.REPORT_OUT;
const EXPECTED = process.env.REPORT_EXPECTED;
const STRICT = process.env.REPORT_STRICT === '1';
if (!OUT || !EXPECTED) throw new Error('REPORT_OUT and REPORT_EXPECTED must be set');

const KINDS = new Set(['feature', 'fixture', 'suite', 'rmcp', 'bug']);
const read = (p) => (existsSync(p) ? readFileSync(p, 'utf8') : '');

// --- expected failures ---------------------------------------------------------------------------
// Line: `<scenario>[:<check-id>] | <kind> | <reason>`; `#` starts a comment line.
const entries = [];
readFileSync(EXPECTED, 'utf8').split('\n').forEach((raw, i) => {
  const line = raw.trim();
  if (!line || line.startsWith('#')) return;
  const parts = line.split('|').map((s) => s.trim());
  if (parts.length < 3 || !parts[0] || !KINDS.has(parts[1]) || !parts[2]) {
    throw new Error(`expected-failures.txt:${i + 1}: want "<scenario>[:<check-id>] | <${[...KINDS].join('|')}> | <reason>", got: ${line}`);
  }
  const [scenario, check] = parts[0].split(/:(.*)/s);
  entries.push({ key: parts[0], scenario, check: check || null, kind: parts[1], reason: parts.slice(2).join('|'), used: false, ran: false, failed: false });
});
const dup = entries.map((e) => e.key).find((k, i, a) => a.indexOf(k) !== i);
if (dup) throw new Error(`expected-failures.txt: ${dup} is listed twice`);
const wholeEntry = (s) => entries.find((e) => e.scenario === s && !e.check);
const checkEntry = (s, c) => entries.find((e) => e.scenario === s && e.check === c);

// --- suite results -------------------------------------------------------------------------------
const STAMP = /-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z$/;
const runs = [];
const runProblems = [];
const suiteDir = join(OUT, 'suite');
const labels = existsSync(suiteDir) ? readdirSync(suiteDir).sort() : [];
for (const label of labels) {
  const dir = join(suiteDir, label);
  const stdout = read(join(dir, 'stdout.log'));
  const attempted = [...stdout.matchAll(/^=== Running scenario: (\S+) ===$/gm)].map((m) => m[1]);
  const results = new Map();
  for (const d of readdirSync(dir)) {
    if (!d.startsWith('server-') || !STAMP.test(d)) continue;
    const scenario = d.slice('server-'.length).replace(STAMP, '');
    let checks;
    try {
      checks = JSON.parse(readFileSync(join(dir, d, 'checks.json'), 'utf8'));
    } catch {
      checks = [{ id: 'checks.json', status: 'FAILURE', errorMessage: 'no readable checks.json' }];
    }
    results.set(scenario, [...(results.get(scenario) ?? []), ...checks]);
  }
  for (const s of attempted) {
    if (!results.has(s)) results.set(s, [{ id: 'no-results', status: 'FAILURE', errorMessage: 'the scenario left no results (timeout or crash of the suite)' }]);
  }
  for (const c of read(join(dir, 'crashes')).split('\n').filter(Boolean)) runProblems.push(`suite run ${label}: ${c}`);
  if (results.size === 0) {
    runProblems.push(`suite run ${label}: no scenario ran (exit ${read(join(dir, 'exit-code')).trim() || '?'}); see ${join(dir, 'stdout.log')}: ${stdout.slice(-300).replace(/\s+/g, ' ')}`);
  }
  for (const [scenario, checks] of results) runs.push({ label, scenario, checks });
}

for (const run of runs) {
  const failing = new Map(); // check id -> first failing check
  for (const c of run.checks) if (c.status === 'FAILURE' && !failing.has(c.id)) failing.set(c.id, c);
  run.failing = [...failing.values()];
  run.warnings = run.checks.filter((c) => c.status === 'WARNING');
  const whole = wholeEntry(run.scenario);
  for (const e of entries) if (e.scenario === run.scenario) e.ran = true;
  run.unexpected = [];
  for (const c of run.failing) {
    const e = checkEntry(run.scenario, c.id) ?? whole;
    if (e) {
      e.used = true;
      e.failed = true;
    } else run.unexpected.push(c);
  }
  run.status = run.failing.length === 0 ? 'pass' : run.unexpected.length === 0 ? 'xfail' : 'FAIL';
}
// An entry "now passes" when its scenario ran and the failure it excuses never happened.
const stale = entries.filter((e) => e.ran && !e.failed);
const notRun = entries.filter((e) => !e.ran);

// --- inspector -----------------------------------------------------------------------------------
let inspector = [];
try {
  inspector = JSON.parse(readFileSync(join(OUT, 'inspector.json'), 'utf8'));
} catch {
  runProblems.push('the Inspector checks did not run (no inspector.json)');
}
if (existsSync(join(OUT, 'server-died'))) runProblems.push('the HTTP server exited during the run (see server-http.log)');

// --- output --------------------------------------------------------------------------------------
const out = [];
const p = (s = '') => out.push(s);
const runLabels = [...new Set(runs.map((r) => r.label))];
const scenarios = [...new Set(runs.map((r) => r.scenario))];
const width = Math.max(8, ...scenarios.map((s) => s.length));
const colW = Math.max(10, ...runLabels.map((l) => l.length));

p('');
p('=== Inspector CLI (stdio + streamable HTTP, legacy + modern era)');
const byCombo = new Map();
for (const r of inspector) {
  const k = `${r.transport}/${r.era}`;
  byCombo.set(k, [...(byCombo.get(k) ?? []), r]);
}
for (const [k, rs] of byCombo) p(`  ${k.padEnd(13)} ${rs.filter((r) => r.ok).length}/${rs.length} passed`);
for (const r of inspector.filter((r) => !r.ok)) p(`  FAIL ${r.transport}/${r.era}: ${r.name}: ${r.note}\n       ${(r.excerpt ?? '').replace(/\s+/g, ' ')}`);

p('');
p('=== Conformance suite server scenarios over streamable HTTP (pass | xfail = expected failure | FAIL | - = not run)');
p(`  ${'scenario'.padEnd(width)}  ${runLabels.map((l) => l.padEnd(colW)).join(' ')}`);
for (const s of scenarios) {
  const cells = runLabels.map((l) => (runs.find((r) => r.label === l && r.scenario === s)?.status ?? '-').padEnd(colW));
  p(`  ${s.padEnd(width)}  ${cells.join(' ')}`);
}

const unexpected = runs.filter((r) => r.status === 'FAIL');
if (unexpected.length) {
  p('');
  p('=== UNEXPECTED failures (fix them, or add them to expected-failures.txt with the reason)');
  for (const r of unexpected) {
    for (const c of r.unexpected) p(`  ${r.label} ${r.scenario}:${c.id}: ${(c.errorMessage ?? '').replace(/\s+/g, ' ').slice(0, 300)}`);
  }
}
if (stale.length) {
  p('');
  p(`=== Expected failures that now PASS (remove them from expected-failures.txt)${STRICT ? '' : ' [not fatal; CONFORMANCE_STRICT=1 makes it so]'}`);
  for (const e of stale) p(`  ${e.key}`);
}
if (notRun.length) {
  p('');
  p('=== Expected-failure entries whose scenario did not run (renamed or dropped by the suite?)');
  for (const e of notRun) p(`  ${e.key}`);
}
const warnings = new Map();
for (const r of runs) {
  for (const c of r.warnings) {
    const k = `${r.scenario}:${c.id}`;
    const w = warnings.get(k) ?? { labels: [], msg: c.errorMessage ?? '' };
    w.labels.push(r.label);
    warnings.set(k, w);
  }
}
if (warnings.size) {
  p('');
  p('=== Warnings (SHOULD-level or untestable checks; not failures)');
  for (const [k, w] of warnings) p(`  ${k} [${w.labels.join(', ')}]: ${w.msg.replace(/\s+/g, ' ').slice(0, 240)}`);
}
if (runProblems.length) {
  p('');
  p('=== Run problems');
  for (const m of runProblems) p(`  ${m}`);
}

const iPass = inspector.filter((r) => r.ok).length;
const iFail = inspector.length - iPass;
const sPass = runs.filter((r) => r.status === 'pass').length;
const sXfail = runs.filter((r) => r.status === 'xfail').length;
const sFail = unexpected.length;
const failed = iFail + sFail + runProblems.length + (STRICT ? stale.length : 0);
const passed = iPass + sPass;
p('');
p('=== Summary');
p(`  inspector checks:        ${iPass} passed, ${iFail} failed`);
p(`  suite scenario runs:     ${sPass} passed, ${sXfail} expected failures, ${sFail} unexpected failures (${runs.length} runs of ${scenarios.length} scenarios at ${runLabels.join(', ')})`);
p(`  expected-failure list:   ${entries.length} entries, ${stale.length} now pass, ${notRun.length} not run`);
const timings = read(join(OUT, 'timings.txt')).trim();
if (timings) {
  p('');
  p('=== Timings');
  for (const t of timings.split('\n')) p(`  ${t}`);
}
p('');
p(`${passed} passed, ${failed} failed`);
console.log(out.join('\n'));

writeFileSync(join(OUT, 'suite-results.json'), JSON.stringify(runs.map((r) => ({
  run: r.label,
  scenario: r.scenario,
  status: r.status,
  failing: r.failing.map((c) => ({ id: c.id, message: c.errorMessage, expected: !r.unexpected.includes(c) })),
  warnings: r.warnings.map((c) => ({ id: c.id, message: c.errorMessage })),
})), null, 2));
process.exit(failed > 0 ? 1 : 0);
