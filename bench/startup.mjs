// One-shot start-up, as scripts call kmu11 (one process a key):
//   startup_help_vs_node  `kmu11 singlecmd help` ÷ `node -e 0`
//   oneshot_vs_pkcs11js   `kmu11 singlecmd loginHSM … genECCKeyPair -i 2` on a fresh embedded token
//                         ÷ bench/oneshot-pkcs11js.cjs (init, login, token EC keygen, finalize)
// Medians of wall time over interleaved runs, and (in a second run of each, with
// bench/cpu-report.cjs preloaded) of the process's CPU time, which the machine's load moves less. Every one-shot run gets its own copy of a token
// made once before (the copy is not timed), so each starts from the same fresh token. Also the
// scrypt verify of the login, measured in-process, as part of kmu11's cost.
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { scryptSync } from 'node:crypto';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const CLI = join(root, 'dist', 'kmu11.cjs');
const ONESHOT = ['singlecmd', 'loginHSM', '-u', 'CU', '-s', 'crypto_user', '-p', 'password', 'genECCKeyPair', '-i', '2', '-l', 'oneshot'];

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const r = (x, d = 3) => (x == null ? null : Math.round(x * 10 ** d) / 10 ** d);

const CPU_FILE = join(os.tmpdir(), `kmu11-startup-cpu-${process.pid}`);

/** Wall ms of one run of `node <args>`; with cpu, the child's own CPU ms instead. */
function timed(args, env, cpu = false) {
  rmSync(CPU_FILE, { force: true });
  const argv = cpu ? ['-r', join(here, 'cpu-report.cjs'), ...args] : args;
  const t = process.hrtime.bigint();
  const p = spawnSync(process.execPath, argv, { env: cpu ? { ...env, KMU11_BENCH_CPU_FILE: CPU_FILE } : env, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - t) / 1e6;
  if (p.status !== 0) throw new Error(`node ${args.join(' ')}: exit ${p.status ?? p.signal}: ${p.stderr.trim().split('\n')[0]}`);
  return cpu ? Number(readFileSync(CPU_FILE, 'utf8')) : ms;
}

/** A copy of the template home whose softhsm2.conf points at the copy's own tokens. */
function copyHome(template, dest) {
  cpSync(template, dest, { recursive: true });
  const conf = join(dest, 'softhsm2.conf');
  writeFileSync(conf, readFileSync(conf, 'utf8').replace(/^(\s*directories\.tokendir\s*=).*$/m, `$1 ${join(dest, 'tokens')}`));
}

/** scrypt as the embedded login runs it, for the parameters of the template home's crypto_user hash. */
function scryptCost(home) {
  const users = JSON.parse(readFileSync(join(home, 'users.json'), 'utf8')).users;
  const hash = users.find((u) => u.name === 'crypto_user').passwordHash;
  const [, ln, rr, p] = /^\$scrypt\$ln=(\d+),r=(\d+),p=(\d+)\$/.exec(hash).map(Number);
  const N = 2 ** ln;
  const times = [];
  for (let i = 0; i < 5; i++) {
    const t = performance.now();
    scryptSync('password', Buffer.alloc(16), 32, { N, r: rr, p, maxmem: 256 * N * rr });
    times.push(performance.now() - t);
  }
  return { params: `ln=${ln},r=${rr},p=${p}`, memory_mib: r((128 * N * rr) / 2 ** 20, 1), median_ms: r(median(times), 1) };
}

export function measureStartup({ runs = 15, log = () => {} } = {}) {
  const dir = mkdtempSync(join(os.tmpdir(), 'kmu11-startup-'));
  try {
    const template = join(dir, 'template');
    const baseEnv = { ...process.env };
    for (const k of ['KMU11_MODULE', 'KMU11_TOKEN', 'KMU11_CONFIG', 'KMU11_HOME', 'SOFTHSM2_CONF']) delete baseEnv[k];
    // Make the embedded token once (first use), outside the timed runs.
    execFileSync(process.execPath, [CLI, '--home', template, 'info'], { env: baseEnv, stdio: ['ignore', 'ignore', 'inherit'] });
    const pin = readFileSync(join(template, 'user.pin'), 'utf8').trim();
    const info = execFileSync(process.execPath, [CLI, '--home', template, 'info'], { env: baseEnv, encoding: 'utf8' });
    const token = /^token:\s+(.+)$/m.exec(info)[1].trim();
    const modulePath = /^module:\s+(.+)$/m.exec(info)[1].trim();

    const t = { node: [], help: [], pkcs11js: [], kmu11: [] };
    const cpu = { node: [], help: [], pkcs11js: [], kmu11: [] };
    let n = 0;
    const cases = {
      node: (c) => timed(['-e', '0'], baseEnv, c),
      help: (c) => timed([CLI, '--home', join(dir, 'unused'), 'singlecmd', 'help'], baseEnv, c),
      pkcs11js: (c) => {
        const home = join(dir, `p${n++}`);
        copyHome(template, home);
        return timed([join(here, 'oneshot-pkcs11js.cjs'), modulePath, token], { ...baseEnv, SOFTHSM2_CONF: join(home, 'softhsm2.conf'), KMU11_BENCH_PIN: pin }, c);
      },
      kmu11: (c) => {
        const home = join(dir, `k${n++}`);
        copyHome(template, home);
        return timed([CLI, '--home', home, ...ONESHOT], baseEnv, c);
      },
    };
    const names = Object.keys(cases);
    // One warm-up round (page cache), then `runs` rounds, the order rotated each round.
    for (let i = -1; i < runs; i++) {
      for (let j = 0; j < names.length; j++) {
        const name = names[(j + Math.max(i, 0)) % names.length];
        const wall = cases[name](false);
        const c = cases[name](true);
        if (i >= 0) t[name].push(wall), cpu[name].push(c);
      }
      if (i >= 0) log(`start-up round ${i + 1}/${runs}`);
    }
    const m = Object.fromEntries(Object.entries(t).map(([k, v]) => [k, median(v)]));
    const c = Object.fromEntries(Object.entries(cpu).map(([k, v]) => [k, median(v)]));
    return {
      runs,
      median_ms: {
        node_e_0: r(m.node, 1),
        kmu11_singlecmd_help: r(m.help, 1),
        pkcs11js_oneshot: r(m.pkcs11js, 1),
        kmu11_oneshot: r(m.kmu11, 1),
      },
      median_cpu_ms: {
        node_e_0: r(c.node, 1),
        kmu11_singlecmd_help: r(c.help, 1),
        pkcs11js_oneshot: r(c.pkcs11js, 1),
        kmu11_oneshot: r(c.kmu11, 1),
      },
      cpu_help_vs_node: r(c.help / c.node),
      cpu_oneshot_vs_pkcs11js: r(c.kmu11 / c.pkcs11js),
      login_scrypt: scryptCost(template),
      startup_help_vs_node: r(m.help / m.node),
      oneshot_vs_pkcs11js: r(m.kmu11 / m.pkcs11js),
    };
  } finally {
    rmSync(CPU_FILE, { force: true });
    rmSync(dir, { recursive: true, force: true });
  }
}

// `node bench/startup.mjs [runs]`: this part alone, one JSON object on stdout.
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const runs = Number(process.argv[2] ?? 15);
  process.stdout.write(JSON.stringify(measureStartup({ runs, log: (s) => process.stderr.write(`bench: ${s}\n`) }), null, 2) + '\n');
}
