// One benchmark process for one binding (pkcs11js or kmu11):
//   node --expose-gc bench/driver.mjs '<json options>'
// Runs the throughput cells (opts.concurrency), then optionally the same cells
// with the event-loop probe on (opts.stall; kept apart because a 1 ms timer
// costs a few per cent of throughput) and the RSS run (opts.rss), and prints
// one JSON object on stdout. Run by bench/run.mjs; the token comes from
// SOFTHSM2_CONF.
import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

const opts = JSON.parse(process.argv[2]);
const { open } = await import(`./impl/${opts.impl}.mjs`);
const MIB = 1024 * 1024;

/** Largest gap between 1 ms timer ticks, minus the 1 ms: how long the loop was held. */
function stallProbe() {
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  return () => {
    h.disable();
    return {
      max_stall_ms: round(Math.max(0, h.max / 1e6 - 1), 3),
      p99_stall_ms: round(Math.max(0, h.percentile(99) / 1e6 - 1), 3),
    };
  };
}

const round = (x, d) => Math.round(x * 10 ** d) / 10 ** d;
const perPair = (x, pairs, d) => (pairs > 0 ? round(x / pairs, d) : null);
const switches = (r) => r.voluntaryContextSwitches + r.involuntaryContextSwitches;

/** CPU time of the event-loop thread alone, µs (Linux schedstat; null elsewhere). */
function mainThreadUs() {
  try {
    return Number(readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ')[0]) / 1000;
  } catch {
    return null;
  }
}

/** `concurrency` chains, each on its own session, until stop() or `budget` pairs. */
function start(binding, concurrency, budget = Infinity) {
  const state = { issued: 0, done: 0, stopped: false };
  const chains = Array.from({ length: concurrency }, async (_, i) => {
    while (!state.stopped && state.issued < budget) {
      state.issued++;
      await binding.pair(i);
      state.done++;
    }
  });
  state.finished = Promise.all(chains);
  state.stop = () => {
    state.stopped = true;
    return state.finished;
  };
  return state;
}

/** Steady-state pairs/s: counted from after the warm-up to the end of the window. */
async function cell(binding, concurrency, probed = false) {
  const run = start(binding, concurrency);
  await sleep(opts.warmupMs);
  const probe = probed ? stallProbe() : null;
  const c0 = run.done;
  const t0 = performance.now();
  const r0 = process.resourceUsage();
  const m0 = mainThreadUs();
  await sleep(opts.measureMs);
  const c1 = run.done;
  const t1 = performance.now();
  const r1 = process.resourceUsage();
  const m1 = mainThreadUs();
  const stall = probe?.();
  await run.stop();
  const seconds = (t1 - t0) / 1000;
  return {
    concurrency,
    pairs: c1 - c0,
    seconds: round(seconds, 4),
    pairs_per_s: round((c1 - c0) / seconds, 1),
    // Process CPU (all threads) per pair: overhead that wall-clock hides on an idle core.
    cpu_us_per_pair: perPair(r1.userCPUTime + r1.systemCPUTime - r0.userCPUTime - r0.systemCPUTime, c1 - c0, 1),
    switches_per_pair: perPair(switches(r1) - switches(r0), c1 - c0, 2),
    main_thread_us_per_pair: m0 == null ? null : perPair(m1 - m0, c1 - c0, 1),
    ...stall,
  };
}

async function settledRss() {
  if (global.gc) {
    global.gc();
    await sleep(50);
    global.gc();
  }
  await sleep(50);
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed, external: m.external + m.arrayBuffers };
}

async function rssRun(binding, { warmup, count, concurrency }) {
  await start(binding, concurrency, warmup).finished;
  const before = await settledRss();
  const probe = stallProbe();
  const t0 = performance.now();
  await start(binding, concurrency, count).finished;
  const t1 = performance.now();
  const stall = probe();
  const after = await settledRss();
  return {
    generations: count,
    warmup,
    concurrency,
    gc: Boolean(global.gc),
    pairs_per_s: round(count / ((t1 - t0) / 1000), 1),
    rss_before_mib: round(before.rss / MIB, 2),
    rss_after_mib: round(after.rss / MIB, 2),
    rss_growth_mib: round((after.rss - before.rss) / MIB, 3),
    heap_growth_mib: round((after.heapUsed - before.heapUsed) / MIB, 3),
    external_growth_mib: round((after.external - before.external) / MIB, 3),
    ...stall,
  };
}

const stallConcurrency = opts.stall?.concurrency ?? [];
const sessions = Math.max(1, ...opts.concurrency, ...stallConcurrency, opts.rss?.concurrency ?? 1);
const binding = await open({ module: opts.module, label: opts.label, pin: opts.pin, sessions });
const out = { impl: opts.impl, results: [] };
try {
  if (opts.concurrency.length || stallConcurrency.length) {
    // First-run costs (JIT, pool threads, allocator arenas) stay out of every cell.
    const w = start(binding, sessions);
    await sleep(opts.initialWarmupMs);
    await w.stop();
  }
  for (const c of opts.concurrency) {
    out.results.push(await cell(binding, c));
    process.stderr.write(`bench:   ${opts.impl} ${c} in flight: ${out.results.at(-1).pairs_per_s} pairs/s\n`);
  }
  if (stallConcurrency.length) {
    // Control: the same probe with nothing in flight shows the machine's own noise.
    const probe = stallProbe();
    await sleep(opts.measureMs);
    out.stall_idle = probe();
    out.stall = [];
  }
  for (const c of stallConcurrency) {
    out.stall.push(await cell(binding, c, true));
    process.stderr.write(`bench:   ${opts.impl} ${c} in flight, probed: max stall ${out.stall.at(-1).max_stall_ms} ms\n`);
  }
  if (opts.rss) out.rss = await rssRun(binding, opts.rss);
} finally {
  await binding.close();
}
process.stdout.write(JSON.stringify(out) + '\n');
