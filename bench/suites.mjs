// The benchmark's suites beyond the binding comparison (issue "Throughput where users feel it"):
// batches through a networked-HSM stand-in and on SoftHSM, the event loop during a library
// batch, and one-shot commands on growing tokens. Each gives raw figures and named ratios.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { measureBatches } from './latency.mjs';
import { measureScale } from './scale.mjs';

export const SUITE_TARGETS = {
  latency_parallel_vs_serial: { goal: 10, cmp: '>=', label: 'networked: --parallel 16 ÷ serial' },
  latency_vs_pkcs11_tool_per_key: { goal: 50, cmp: '>=', label: 'networked: --parallel 16 ÷ pkcs11-tool per key' },
  batch_vs_pkcs11js_loop: { goal: 0.95, cmp: '>=', label: 'SoftHSM: serial batch ÷ pkcs11js loop' },
  parallel_vs_serial_softhsm: { goal: 1.5, cmp: '>=', label: 'SoftHSM: --parallel 16 ÷ serial' },
  batch_stall_above_idle_ms: { goal: 1, cmp: '<=', label: 'library batch: max stall − idle stall (ms)' },
  scale_10k_vs_pkcs11_tool: { goal: 1.5, cmp: '<=', label: 'one-shot commands ÷ pkcs11-tool at the largest token' },
};

function stallBatch({ root, module, keys, log }) {
  const dir = mkdtempSync(join(os.tmpdir(), 'kmu11-stall-'));
  try {
    mkdirSync(join(dir, 'tokens'), { mode: 0o700 });
    const conf = join(dir, 'softhsm2.conf');
    writeFileSync(conf, `directories.tokendir = ${join(dir, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`);
    const env = { ...process.env, SOFTHSM2_CONF: conf };
    delete env.KMU11_MODULE;
    execFileSync('softhsm2-util', ['--init-token', '--free', '--label', 'stall', '--so-pin', '1234', '--pin', '1234'], { env, stdio: 'ignore' });
    log(`stall: ${keys}-key library batch with login, findKey and attribute reads`);
    const args = { api: join(root, 'dist', 'index.js'), module, token: 'stall', pin: '1234', home: join(dir, 'home'), keys };
    const r = spawnSync(process.execPath, [join(root, 'bench', 'stall-batch.mjs'), JSON.stringify(args)], { env, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`stall-batch: exit ${r.status}\n${r.stderr}`);
    return JSON.parse(r.stdout);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs the suites `o.suites` names (of batch, stall, scale); returns { figures, details }. */
export function runSuites(o, { root, log }) {
  const kmu11 = [process.execPath, join(root, 'dist', 'cli', 'main.js')];
  const figures = {};
  const details = {};
  const r = (x, d = 2) => (x == null ? null : Math.round(x * 10 ** d) / 10 ** d);
  if (o.suites.includes('batch')) {
    const fault = execFileSync('bash', [join(root, 'scripts', 'build-faultmod.sh')], { encoding: 'utf8' }).trim();
    details.batches = measureBatches({
      kmu11, softhsm: o.module, fault, delayUs: o.delayUs, keys: o.batchKeys, parallel: o.parallel,
      sample: o.batchSample, softKeys: o.softKeys, log,
    });
    Object.assign(figures, details.batches.ratios);
  }
  if (o.suites.includes('stall')) {
    details.batch_stall = stallBatch({ root, module: o.module, keys: o.stallKeys, log });
    figures.batch_max_stall_ms = r(details.batch_stall.max_stall_ms);
    figures.batch_stall_idle_ms = r(details.batch_stall.stall_idle_ms);
    figures.batch_stall_above_idle_ms = r(details.batch_stall.max_stall_ms - details.batch_stall.stall_idle_ms);
  }
  if (o.suites.includes('scale')) {
    details.scale = measureScale({ kmu11, sizes: o.scaleSizes, runs: o.scaleRuns, log });
    figures.scale_10k_vs_pkcs11_tool = details.scale.worst_ratio_at_largest;
    figures.scale_largest_objects = details.scale.largest;
  }
  return { figures, details };
}

/** The suites' lines for the text table. */
export function suitesTable(s, fmt, pad) {
  const L = [];
  const b = s.batches;
  if (b) {
    const n = b.networked;
    L.push(`batches of genECCKeyPair -i 2 token keys (fresh token each):`);
    L.push(`  ${n.delay_ms_per_call} ms a call (networked-HSM stand-in: the fault module's remote mode, SoftHSM's tokens on tmpfs), ${n.keys} keys: serial ${fmt(n.kmu11_serial_s, 2)} s, --parallel ${n.parallel} ${fmt(n.kmu11_parallel_s, 2)} s, pkcs11-tool ${fmt(n.pkcs11_tool_s_per_key * 1000)} ms a key (median of ${n.pkcs11_tool_sample} processes) → ${fmt(n.pkcs11_tool_estimated_s, 1)} s`);
    const h = b.softhsm;
    L.push(`  SoftHSM, ${h.keys} keys: kmu11 serial ${fmt(h.kmu11_serial_s, 2)} s, --parallel ${h.parallel} ${fmt(h.kmu11_parallel_s, 2)} s, pkcs11js loop ${fmt(h.pkcs11js_loop_s, 2)} s (whole processes)`);
  }
  if (s.batch_stall) {
    const x = s.batch_stall;
    L.push(`library batch of ${x.keys} keys + findKey + ${x.reads} attribute reads: max event-loop stall ${fmt(x.max_stall_ms, 2)} ms (idle ${fmt(x.stall_idle_ms, 2)} ms), ${fmt(x.seconds, 1)} s`);
  }
  if (s.scale) {
    L.push('one-shot singlecmd (login + command) ÷ pkcs11-tool on the same token, medians (ms):');
    L.push(['objects', 'genECCKeyPair', 'findKey -l', 'getAttribute', 'deleteKey'].map((h, i) => (i ? pad(h, 20) : h.padEnd(9))).join(''));
    for (const row of s.scale.sizes) {
      const cell = (c) => `${fmt(row[c].kmu11_ms)}/${fmt(row[c].pkcs11_tool_ms)} ${fmt(row[c].ratio, 2)}×`;
      L.push([fmt(row.objects).padEnd(9), ...['genECCKeyPair', 'findKey', 'getAttribute', 'deleteKey'].map((c) => pad(cell(c), 20))].join(''));
    }
  }
  return L;
}
