// `npm run bench [-- --json] [--quick] [--suites pairs,batch,stall,scale] [--reps N] [--measure-ms N] [--warmup-ms N]
//   [--concurrency 1,2,4,8] [--only raw_c,pkcs11js,kmu11] [--module PATH] [--startup-runs N]`
//
// First the one-shot start-up figures (bench/startup.mjs; --startup-runs 0 skips them), then:
// EC P-256 session key pairs per second (C_GenerateKeyPair + C_DestroyObject of
// both halves) through three routes to the same SoftHSM module: plain C
// (bench/raw.c), pkcs11js, and kmu11's addon. Each route runs in its own
// process (a module can be C_Initialize'd once per process); repetitions are
// interleaved and the best of each cell is kept. kmu11 also gets an
// event-loop stall figure and an RSS-growth run. A throwaway token is made for
// the run and removed after. Progress goes to stderr; stdout carries the table
// or, with --json, exactly one JSON object (npm itself prints a "> kmu11 bench"
// banner on stdout unless run as `npm run -s bench -- --json`). The full
// figures are also written to .bench/last.json.
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { measureStartup } from './startup.mjs';
import { runSuites, SUITE_TARGETS, suitesTable } from './suites.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const RAW_BIN = join(root, '.bench', 'raw');
const LAST = join(root, '.bench', 'last.json');
const KMU11_ADDON = join(root, 'build', 'Release', 'kmu11_pkcs11.node');
const KMU11_API = join(root, 'dist', 'p11', 'index.js');
const SNAPSHOT = join(root, '.bench', 'kmu11');
const MODULES = [
  '/usr/lib/softhsm/libsofthsm2.so',
  '/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so',
  '/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so',
  '/usr/local/lib/softhsm/libsofthsm2.so',
];
const IMPLS = ['raw_c', 'pkcs11js', 'kmu11'];
// pairs: the binding comparison below; batch, stall, scale: bench/latency.mjs, stall-batch.mjs, scale.mjs.
const SUITES = ['pairs', 'batch', 'stall', 'scale'];
const LABEL = 'bench';
const PIN = '1234';

const TARGETS = {
  ratio_vs_raw_c: { goal: 0.9, cmp: '>=' },
  ratio_vs_pkcs11js: { goal: 1.3, cmp: '>=' },
  max_stall_ms: { goal: 2, cmp: '<=' },
  rss_growth_mib: { goal: 2, cmp: '<=' },
  // Not one of the targets: the same goal, less raw C's growth in the same run.
  rss_growth_net_mib: { goal: 2, cmp: '<=' },
  startup_help_vs_node: { goal: 1.2, cmp: '<=' },
  oneshot_vs_pkcs11js: { goal: 1.0, cmp: '<=' },
  overhead_us_per_call: { goal: 15, cmp: '<=' },
  ratio_vs_pkcs11js_min: { goal: 1.3, cmp: '>=' },
  ...SUITE_TARGETS,
};

function parseArgs(argv) {
  const o = {
    json: false, reps: 3, measureMs: 2000, warmupMs: 500, initialWarmupMs: 1000,
    concurrency: [1, 2, 4, 8], only: IMPLS, module: process.env.KMU11_BENCH_MODULE,
    rssCount: 10000, rssWarmup: 1000, rssConcurrency: 4, startupRuns: 15,
    suites: SUITES, batchKeys: 1000, batchSample: 20, softKeys: 500, parallel: 16, delayUs: 2000,
    scaleSizes: [100, 1000, 10000], scaleRuns: 5, stallKeys: 1000,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    const int = () => {
      const n = Number(val());
      if (!Number.isInteger(n) || n < 0) throw new Error(`${a} needs a whole number`);
      return n;
    };
    if (a === '--json') o.json = true;
    else if (a === '--reps') o.reps = Math.max(1, int());
    else if (a === '--measure-ms') o.measureMs = int();
    else if (a === '--warmup-ms') o.warmupMs = int();
    else if (a === '--rss-count') o.rssCount = int();
    else if (a === '--module') o.module = val();
    else if (a === '--startup-runs') o.startupRuns = int();
    else if (a === '--concurrency') o.concurrency = val().split(',').map(Number);
    else if (a === '--only') o.only = val().split(',');
    else if (a === '--suites') o.suites = val().split(',');
    else if (a === '--batch-keys') o.batchKeys = int();
    else if (a === '--scale-sizes') o.scaleSizes = val().split(',').map(Number);
    else if (a === '--scale-runs') o.scaleRuns = int();
    else if (a === '--quick') Object.assign(o, { reps: 1, startupRuns: 5, batchKeys: 200, batchSample: 5, softKeys: 100, scaleSizes: [100, 1000], scaleRuns: 3, stallKeys: 200, rssCount: 2000 });
    else throw new Error(`unknown option ${a} (see the top of bench/run.mjs)`);
  }
  if (o.concurrency.some((c) => !Number.isInteger(c) || c < 1)) throw new Error('--concurrency: positive integers');
  for (const x of o.only) if (!IMPLS.includes(x)) throw new Error(`--only: ${x} is not one of ${IMPLS}`);
  for (const x of o.suites) if (!SUITES.includes(x)) throw new Error(`--suites: ${x} is not one of ${SUITES}`);
  o.module ??= MODULES.find((p) => existsSync(p));
  if (!o.module) throw new Error('libsofthsm2.so not found (apt-get install softhsm2, or --module)');
  return o;
}

const log = (msg) => process.stderr.write(`bench: ${msg}\n`);

function makeToken() {
  const dir = mkdtempSync(join(os.tmpdir(), 'kmu11-bench-'));
  mkdirSync(join(dir, 'tokens'), { mode: 0o700 });
  const conf = join(dir, 'softhsm2.conf');
  writeFileSync(conf, `directories.tokendir = ${join(dir, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`);
  const env = { ...process.env, SOFTHSM2_CONF: conf };
  execFileSync('softhsm2-util', ['--init-token', '--free', '--label', LABEL, '--so-pin', PIN, '--pin', PIN], { env, stdio: ['ignore', 'ignore', 'inherit'] });
  return { dir, env };
}

/** Runs a child that prints one JSON object on stdout; its stderr passes through. */
function child(cmd, args, env) {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.setEncoding('utf8').on('data', (d) => (out += d));
    p.on('error', reject);
    p.on('close', (code, signal) => {
      if (code !== 0) return reject(new Error(`${cmd} ${args[0]}: exit ${code ?? signal}`));
      try {
        resolve(JSON.parse(out));
      } catch {
        reject(new Error(`${cmd}: no JSON on stdout: ${out.slice(0, 200)}`));
      }
    });
  });
}

function runImpl(impl, o, env, extra = {}) {
  if (impl === 'raw_c') {
    const args = extra.rss
      ? ['--rss', extra.rss.warmup, extra.rss.count, extra.rss.concurrency]
      : [o.warmupMs, o.measureMs, ...o.concurrency];
    return child(RAW_BIN, [o.module, LABEL, PIN, ...args.map(String)], env);
  }
  const opts = {
    impl, module: o.module, label: LABEL, pin: PIN,
    warmupMs: o.warmupMs, measureMs: o.measureMs, initialWarmupMs: o.initialWarmupMs,
    concurrency: o.concurrency, ...extra,
  };
  return child(process.execPath, ['--expose-gc', join(here, 'driver.mjs'), JSON.stringify(opts)], env);
}

/**
 * A private copy of dist/p11 and the addon, laid out as native.js expects
 * (../../build/Release), so a rebuild in the work tree during the run cannot
 * pull the addon from under it or mix two builds.
 */
function snapshotKmu11() {
  rmSync(SNAPSHOT, { recursive: true, force: true });
  cpSync(dirname(KMU11_API), join(SNAPSHOT, 'dist', 'p11'), { recursive: true });
  mkdirSync(join(SNAPSHOT, 'build', 'Release'), { recursive: true });
  copyFileSync(KMU11_ADDON, join(SNAPSHOT, 'build', 'Release', 'kmu11_pkcs11.node'));
  process.env.KMU11_BENCH_API = join(SNAPSHOT, 'dist', 'p11', 'index.js');
}

function softhsmVersion() {
  try {
    return execFileSync('softhsm2-util', ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    return null;
  }
}

function packageVersion(name) {
  try {
    return JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')).version;
  } catch {
    return null;
  }
}

const maxBy = (xs, f) => xs.reduce((a, b) => (f(b) > f(a) ? b : a));
const r = (x, d = 3) => (x == null ? null : Math.round(x * 10 ** d) / 10 ** d);

function summarise(o, runs, probed, unavailable, loadBefore, startup, suites = { figures: {}, details: {} }) {
  // Best of the repetitions, per route and concurrency, with that cell's CPU cost.
  const best = {};
  const cpu = {};
  const mainThread = {};
  const switches = {};
  for (const run of runs) {
    const b = (best[run.impl] ??= {});
    for (const cell of run.results) {
      if (cell.pairs_per_s <= (b[cell.concurrency] ?? 0)) continue;
      b[cell.concurrency] = cell.pairs_per_s;
      (cpu[run.impl] ??= {})[cell.concurrency] = cell.cpu_us_per_pair;
      (switches[run.impl] ??= {})[cell.concurrency] = cell.switches_per_pair;
      if (cell.main_thread_us_per_pair != null) (mainThread[run.impl] ??= {})[cell.concurrency] = cell.main_thread_us_per_pair;
    }
  }
  const stall = {};
  const stallIdle = {};
  const rss = {};
  for (const p of probed) {
    if (p.stall) stall[p.impl] = Object.fromEntries(p.stall.map((c) => [c.concurrency, c.max_stall_ms]));
    if (p.stall_idle) stallIdle[p.impl] = p.stall_idle.max_stall_ms;
    rss[p.impl] = p.rss;
  }
  const bestOf = (impl) => (best[impl] ? Math.max(...Object.values(best[impl])) : null);
  const rawBestC = best.raw_c ? Number(maxBy(Object.keys(best.raw_c), (c) => best.raw_c[c])) : null;
  const kmu = best.kmu11;
  const ratioRaw = kmu && rawBestC != null && kmu[rawBestC] ? kmu[rawBestC] / best.raw_c[rawBestC] : null;
  const ratioJs = kmu && best.pkcs11js ? bestOf('kmu11') / bestOf('pkcs11js') : null;
  const stallAll = [...Object.values(stall.kmu11 ?? {}), rss.kmu11?.max_stall_ms].filter((x) => x != null);
  // kmu11's CPU per pair above raw C's at 1 in flight, per call kmu11 makes (generate, destroy).
  const overhead = cpu.kmu11?.[1] != null && cpu.raw_c?.[1] != null ? (cpu.kmu11[1] - cpu.raw_c[1]) / 2 : null;
  const perConcurrency = kmu && best.pkcs11js ? o.concurrency.filter((c) => kmu[c] && best.pkcs11js[c]).map((c) => kmu[c] / best.pkcs11js[c]) : [];
  const figures = {
    ratio_vs_raw_c: r(ratioRaw),
    ratio_vs_pkcs11js: r(ratioJs),
    overhead_us_per_call: r(overhead, 1),
    ratio_vs_pkcs11js_min: perConcurrency.length ? r(Math.min(...perConcurrency)) : null,
    max_stall_ms: stallAll.length ? r(Math.max(...stallAll)) : null,
    rss_growth_mib: r(rss.kmu11?.rss_growth_mib ?? null),
    rss_growth_module_mib: r(rss.raw_c?.rss_growth_mib ?? null),
    rss_growth_net_mib: rss.kmu11 && rss.raw_c ? r(rss.kmu11.rss_growth_mib - rss.raw_c.rss_growth_mib) : null,
    startup_help_vs_node: startup?.startup_help_vs_node ?? null,
    oneshot_vs_pkcs11js: startup?.oneshot_vs_pkcs11js ?? null,
    ...suites.figures,
  };
  const targets = {};
  for (const [k, t] of Object.entries(TARGETS)) {
    const v = figures[k];
    if (v === undefined) continue; // a suite that did not run
    targets[k] = {
      goal: `${t.cmp} ${t.goal}`,
      value: v,
      result: v == null ? 'n/a' : (t.cmp === '>=' ? v >= t.goal : v <= t.goal) ? 'PASS' : 'FAIL',
    };
  }
  const cpus = os.cpus();
  return {
    bench: 'EC P-256 session key pair: C_GenerateKeyPair(CKM_EC_KEY_PAIR_GEN) + C_DestroyObject x2',
    date: new Date().toISOString(),
    machine: {
      cpu_model: cpus[0]?.model ?? null,
      cores: os.availableParallelism?.() ?? cpus.length,
      os: `${os.type()} ${os.release()} ${os.arch()}`,
      loadavg_before: loadBefore,
      loadavg_after: os.loadavg().map((x) => r(x, 2)),
    },
    node: process.version,
    softhsm: softhsmVersion(),
    module: o.module,
    pkcs11js: packageVersion('pkcs11js'),
    uv_threadpool_size: Number(process.env.UV_THREADPOOL_SIZE) || 4,
    uv_threadpool_size_source: process.env.UV_THREADPOOL_SIZE ? 'environment' : 'libuv default',
    settings: {
      suites: o.suites, reps: o.reps, warmup_ms: o.warmupMs, measure_ms: o.measureMs, concurrency: o.concurrency,
      rss_warmup: o.rssWarmup, rss_generations: o.rssCount, rss_concurrency: o.rssConcurrency,
      stall_probe: 'separate pass per concurrency, monitorEventLoopDelay(resolution 1 ms): longest gap between ticks - 1 ms; also over the RSS run',
    },
    pairs_per_s: best,
    cpu_us_per_pair: cpu,
    context_switches_per_pair: switches,
    event_loop_thread_us_per_pair: mainThread,
    raw_c_best_concurrency: rawBestC,
    ...figures,
    stall_ms: stall,
    stall_idle_by_impl_ms: stallIdle,
    // The stall figures: across a library batch, and the idle machine's in the same process.
    max_stall_ms: suites.figures.batch_max_stall_ms ?? figures.max_stall_ms,
    stall_idle_ms: suites.figures.batch_stall_idle_ms ?? (stallIdle.kmu11 != null ? r(stallIdle.kmu11) : null),
    max_stall_pairs_ms: figures.max_stall_ms,
    ...suites.details,
    rss,
    startup,
    targets,
    unavailable,
    runs,
    probed,
  };
}

/** The table when the binding comparison did not run: the suites and their targets alone. */
function suitesOnly(s) {
  const L = [`kmu11 bench (${s.settings.suites.join(', ')}): ${s.date}; ${s.machine.cpu_model}, ${s.machine.cores} cores; load average ${s.machine.loadavg_before[0]} before`, ''];
  L.push(...suitesTable(s, fmt, pad), '');
  for (const [k, t] of Object.entries(s.targets)) if (t.value != null) L.push(`${SUITE_TARGETS[k]?.label ?? k}: ${t.value ?? '—'} (goal ${t.goal}) ${t.result}`);
  return L.join('\n') + '\n';
}

const fmt = (x, d = 0) => (x == null ? '—' : x.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d }));
const pad = (s, n) => String(s).padStart(n);

function table(s) {
  const L = [];
  const { pairs_per_s: b, stall_ms: st } = s;
  if (!s.settings.suites.includes('pairs')) return suitesOnly(s);
  L.push(`kmu11 bench: ${s.bench}`);
  L.push(`${s.machine.cpu_model}, ${s.machine.cores} cores · node ${s.node} · SoftHSM ${s.softhsm} · pkcs11js ${s.pkcs11js} · UV_THREADPOOL_SIZE=${s.uv_threadpool_size} (${s.uv_threadpool_size_source})`);
  L.push(`pairs/s, best of ${s.settings.reps} × ${s.settings.measure_ms / 1000} s after ${s.settings.warmup_ms / 1000} s warm-up; ${s.date}; load average ${s.machine.loadavg_before[0]} before, ${s.machine.loadavg_after[0]} after`);
  L.push('');
  L.push(['in flight', 'raw C', 'pkcs11js', 'kmu11', 'kmu11/raw', 'kmu11/p11js', 'stall kmu11', 'stall p11js'].map((h, i) => (i ? pad(h, 12) : h.padEnd(9))).join(''));
  for (const c of s.settings.concurrency) {
    const raw = b.raw_c?.[c], js = b.pkcs11js?.[c], k = b.kmu11?.[c];
    L.push([
      String(c).padEnd(9),
      fmt(raw), fmt(js), fmt(k),
      k && raw ? fmt(k / raw, 2) : '—', k && js ? fmt(k / js, 2) : '—',
      st.kmu11?.[c] != null ? `${fmt(st.kmu11[c], 2)} ms` : '—',
      st.pkcs11js?.[c] != null ? `${fmt(st.pkcs11js[c], 2)} ms` : '—',
    ].map((v, i) => (i ? pad(v, 12) : v)).join(''));
  }
  if (Object.keys(s.stall_idle_by_impl_ms).length) {
    const idle = Object.entries(s.stall_idle_by_impl_ms).map(([i, v]) => `${i} ${fmt(v, 2)} ms`).join(', ');
    L.push(`stall with nothing in flight (the machine's own noise, same probe): ${idle}`);
  }
  L.push('');
  L.push('per pair, same cells: CPU µs (whole process: raw C / pkcs11js / kmu11), event-loop thread µs (pkcs11js / kmu11),');
  L.push('                       context switches (raw C / pkcs11js / kmu11)');
  const impls = ['raw_c', 'pkcs11js', 'kmu11'];
  for (const c of s.settings.concurrency) {
    L.push([
      String(c).padEnd(9),
      ...impls.map((i) => fmt(s.cpu_us_per_pair[i]?.[c])),
      ...impls.slice(1).map((i) => fmt(s.event_loop_thread_us_per_pair[i]?.[c])),
      ...impls.map((i) => fmt(s.context_switches_per_pair[i]?.[c], 2)),
    ].map((v, i) => (i ? pad(v, i === 4 || i === 6 ? 12 : 8) : v)).join(''));
  }
  L.push('');
  for (const [impl, x] of Object.entries(s.rss)) {
    const stallText = x.max_stall_ms == null ? '' : `, max stall ${fmt(x.max_stall_ms, 2)} ms`;
    L.push(`RSS ${impl.padEnd(8)}: ${fmt(x.generations)} pairs after ${fmt(x.warmup)} warm-up, ${x.concurrency} in flight${x.gc ? ', gc() before and after' : ''}: ${fmt(x.rss_before_mib, 1)} → ${fmt(x.rss_after_mib, 1)} MiB (${x.rss_growth_mib >= 0 ? '+' : ''}${fmt(x.rss_growth_mib, 2)})${stallText}, ${fmt(x.pairs_per_s)} pairs/s`);
  }
  if (s.startup) {
    const m = s.startup.median_ms;
    L.push(`one-shot start-up, medians of ${s.startup.runs} runs: node -e 0 ${fmt(m.node_e_0, 1)} ms, kmu11 singlecmd help ${fmt(m.kmu11_singlecmd_help, 1)} ms;`);
    L.push(`  token EC keygen: pkcs11js script ${fmt(m.pkcs11js_oneshot, 1)} ms, kmu11 singlecmd loginHSM … genECCKeyPair ${fmt(m.kmu11_oneshot, 1)} ms (its login scrypt ${s.startup.login_scrypt.params}, ${fmt(s.startup.login_scrypt.memory_mib, 1)} MiB: ${fmt(s.startup.login_scrypt.median_ms, 1)} ms)`);
    const c = s.startup.median_cpu_ms;
    L.push(`  CPU ms (less moved by load): node ${fmt(c.node_e_0, 1)}, help ${fmt(c.kmu11_singlecmd_help, 1)} (×${fmt(s.startup.cpu_help_vs_node, 2)}); pkcs11js ${fmt(c.pkcs11js_oneshot, 1)}, kmu11 ${fmt(c.kmu11_oneshot, 1)} (×${fmt(s.startup.cpu_oneshot_vs_pkcs11js, 2)})`);
  }
  L.push('');
  const where = s.raw_c_best_concurrency != null ? ` (at ${s.raw_c_best_concurrency} in flight, raw C's best)` : '';
  const rows = [
    [`kmu11 ÷ raw C${where}`, 'ratio_vs_raw_c', 2],
    ['kmu11 best ÷ pkcs11js best', 'ratio_vs_pkcs11js', 2],
    ['kmu11 max event-loop stall (pairs probe)', 'max_stall_ms', 2, ' ms'],
    ['kmu11 CPU over raw C per call, 1 in flight', 'overhead_us_per_call', 1, ' µs'],
    ['kmu11 ÷ pkcs11js, smallest over concurrencies', 'ratio_vs_pkcs11js_min', 2],
    ...Object.entries(SUITE_TARGETS).map(([k, t]) => [t.label, k, 2]),
    [`kmu11 RSS growth over ${fmt(s.settings.rss_generations)} pairs`, 'rss_growth_mib', 2, ' MiB'],
    ['  (info) the same less raw C\'s (SoftHSM\'s own)', 'rss_growth_net_mib', 2, ' MiB'],
    ['`kmu11 singlecmd help` ÷ `node -e 0`', 'startup_help_vs_node', 2],
    ['one-shot genECCKeyPair ÷ pkcs11js script', 'oneshot_vs_pkcs11js', 2],
  ];
  const extra = suitesTable(s, fmt, pad);
  if (extra.length) L.push(...extra, '');
  const w = Math.max(...rows.map((x) => x[0].length)) + 2;
  L.push('target'.padEnd(w) + pad('measured', 12) + pad('goal', 10) + pad('result', 8));
  for (const [label, key, d, unit = ''] of rows) {
    const t = s.targets[key];
    if (!t) continue;
    L.push(label.padEnd(w) + pad(t.value == null ? '—' : fmt(t.value, d) + unit, 12) + pad(t.goal + unit, 10) + pad(t.result, 8));
  }
  for (const [impl, why] of Object.entries(s.unavailable)) L.push(`\n${impl} not measured: ${why}`);
  return L.join('\n') + '\n';
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const unavailable = {};
  let impls = o.only;
  if (impls.includes('raw_c') && !existsSync(RAW_BIN)) {
    unavailable.raw_c = `${RAW_BIN} missing (scripts/bench.sh compiles it)`;
  }
  if (impls.includes('kmu11') && process.env.KMU11_BENCH_SKIP) {
    unavailable.kmu11 = process.env.KMU11_BENCH_SKIP;
  } else if (impls.includes('kmu11') && !(existsSync(KMU11_ADDON) && existsSync(KMU11_API))) {
    unavailable.kmu11 = 'addon not built yet (build/Release/kmu11_pkcs11.node or dist/p11/index.js missing)';
  }
  impls = impls.filter((i) => !unavailable[i]);
  if (impls.includes('kmu11')) snapshotKmu11();
  for (const [i, why] of Object.entries(unavailable)) log(`${i}: ${why}`);

  const loadBefore = os.loadavg().map((x) => r(x, 2));
  if (loadBefore[0] > os.availableParallelism() / 2) {
    log(`warning: load average ${loadBefore[0]} on ${os.availableParallelism()} cores; figures will be noisy`);
  }
  let startup = null;
  if (o.startupRuns > 0) {
    if (unavailable.kmu11 || !existsSync(join(root, 'dist', 'kmu11.cjs'))) unavailable.startup = unavailable.kmu11 ?? 'dist/kmu11.cjs missing';
    else {
      log(`one-shot start-up: ${o.startupRuns} rounds`);
      startup = measureStartup({ runs: o.startupRuns, log });
    }
  }
  const token = makeToken();
  const cleanup = () => rmSync(token.dir, { recursive: true, force: true });
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { cleanup(); process.exit(130); });
  try {
    log(`token in ${token.dir}; module ${o.module}`);
    const runs = [];
    const pairs = o.suites.includes('pairs');
    for (let rep = 0; pairs && rep < o.reps; rep++) {
      // Rotate the order so no route always runs first (or last) in a repetition.
      const order = impls.map((_, i) => impls[(i + rep) % impls.length]);
      for (const impl of order) {
        log(`rep ${rep + 1}/${o.reps}: ${impl}`);
        runs.push({ rep: rep + 1, ...(await runImpl(impl, o, token.env)) });
      }
    }
    // raw C's RSS run is the module's own growth (SoftHSM 2.6.1 keeps a shell
    // of every destroyed session object until C_Finalize).
    const probed = [];
    for (const impl of pairs ? impls : []) {
      log(`${impl === 'raw_c' ? '' : 'event-loop probe and '}RSS (${o.rssWarmup} + ${o.rssCount} pairs): ${impl}`);
      probed.push(await runImpl(impl, { ...o, concurrency: [] }, token.env, {
        stall: { concurrency: impl === 'raw_c' ? [] : o.concurrency },
        rss: { warmup: o.rssWarmup, count: o.rssCount, concurrency: o.rssConcurrency },
      }));
    }
    const suites = runSuites(o, { root, log });
    const summary = summarise(o, runs, probed, unavailable, loadBefore, startup, suites);
    const json = JSON.stringify(summary, null, 2) + '\n';
    writeFileSync(LAST, json);
    log(`figures saved in ${LAST}`);
    process.stdout.write(o.json ? json : table(summary));
  } finally {
    cleanup();
  }
}

main().catch((e) => {
  log(`error: ${e.message}`);
  process.exit(1);
});
