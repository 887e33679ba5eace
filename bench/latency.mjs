// Batches of token keys, as a migration or a provisioning pipeline makes them:
//  - through a networked-HSM stand-in (the tests' fault-injecting module in its remote mode:
//    a fixed delay on every PKCS#11 call slept in parallel, its own name instead of SoftHSM's so
//    kmu11 applies no SoftHSM workaround, and its own server-side lock ordering SoftHSM's token
//    writes; SoftHSM's token directory on tmpfs, so its files are not what is measured; kmu11's
//    home, with the handle store's journal, stays on disk): kmu11 serial batch vs kmu11
//    --parallel N vs one pkcs11-tool process per key (a sample of processes timed, scaled to
//    the batch size);
//  - straight on SoftHSM: kmu11 serial batch vs --parallel N vs a pkcs11js loop in one process.
// Every run gets a fresh token, so no run pays for another's keys. Exported: measureBatches().
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';

const PIN = '1234';
const LABEL = 'batch';

const SHM = '/dev/shm';

/** A fresh token; `tmpfs`: SoftHSM's token directory in /dev/shm (when there is one). */
function freshToken({ tmpfs = false } = {}) {
  const dir = mkdtempSync(join(os.tmpdir(), 'kmu11-batch-'));
  const tokens = tmpfs && existsSync(SHM) ? mkdtempSync(join(SHM, 'kmu11-batch-tokens-')) : join(dir, 'tokens');
  mkdirSync(tokens, { recursive: true, mode: 0o700 });
  const conf = join(dir, 'softhsm2.conf');
  writeFileSync(conf, `directories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`);
  const env = { ...process.env, SOFTHSM2_CONF: conf };
  delete env.KMU11_MODULE;
  execFileSync('softhsm2-util', ['--init-token', '--free', '--label', LABEL, '--so-pin', PIN, '--pin', PIN], { env, stdio: 'ignore' });
  return {
    dir, env, tmpfs: tokens.startsWith(SHM),
    done: () => {
      rmSync(dir, { recursive: true, force: true });
      rmSync(tokens, { recursive: true, force: true });
    },
  };
}

const seconds = (t0) => Number(process.hrtime.bigint() - t0) / 1e9;
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** One kmu11 batch of `keys` genECCKeyPair -i 2 token keys on a fresh token; seconds. */
export function kmu11Batch({ kmu11, module, keys, parallel, extraEnv, tmpfs = false }) {
  const t = freshToken({ tmpfs });
  try {
    const lines = [`loginHSM -u CU -s user -p ${PIN}`, ...Array.from({ length: keys }, (_, i) => `genECCKeyPair -i 2 -l k${i}`)];
    const args = [...kmu11.slice(1), '--home', join(t.dir, 'home'), '--module', module, '--token', LABEL];
    if (parallel > 1) args.push('--parallel', String(parallel));
    const t0 = process.hrtime.bigint();
    const r = spawnSync(kmu11[0], args, { env: { ...t.env, ...extraEnv }, input: lines.join('\n') + '\n', encoding: 'utf8', maxBuffer: 256 << 20 });
    const s = seconds(t0);
    const made = (r.stdout.match(/Cfm3GenerateKeyPair returned: 0x00/g) ?? []).length;
    if (r.status !== 0 || made !== keys) throw new Error(`kmu11 batch (parallel ${parallel}): exit ${r.status}, ${made}/${keys} keys\n${r.stderr.slice(0, 2000)}`);
    return s;
  } finally {
    t.done();
  }
}

/** `sample` pkcs11-tool processes, one key each; median seconds per key. */
export function pkcs11ToolPerKey({ module, sample, extraEnv, tmpfs = false }) {
  const t = freshToken({ tmpfs });
  try {
    const times = [];
    for (let i = 0; i < sample; i++) {
      const t0 = process.hrtime.bigint();
      const r = spawnSync('pkcs11-tool', ['--module', module, '--token-label', LABEL, '--login', '--pin', PIN, '--keypairgen', '--key-type', 'EC:prime256v1', '--label', `t${i}`], { env: { ...t.env, ...extraEnv }, encoding: 'utf8' });
      times.push(seconds(t0));
      if (r.status !== 0) throw new Error(`pkcs11-tool: exit ${r.status}\n${r.stderr}`);
    }
    return median(times);
  } finally {
    t.done();
  }
}

/** The same keys through pkcs11js in one process, one after another (C_GenerateKeyPair each). */
function pkcs11jsLoop({ module, keys }) {
  const t = freshToken();
  try {
    const code = `
      const pkcs11js = require('pkcs11js');
      const p11 = new pkcs11js.PKCS11();
      p11.load(${JSON.stringify(module)});
      p11.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
      const slot = p11.C_GetSlotList(true).find((s) => p11.C_GetTokenInfo(s).label.trim() === ${JSON.stringify(LABEL)});
      const s = p11.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
      p11.C_Login(s, pkcs11js.CKU_USER, ${JSON.stringify(PIN)});
      const P256 = Buffer.from('06082a8648ce3d030107', 'hex');
      for (let i = 0; i < ${keys}; i++) {
        p11.C_GenerateKeyPair(s, { mechanism: pkcs11js.CKM_EC_KEY_PAIR_GEN },
          [{ type: pkcs11js.CKA_TOKEN, value: true }, { type: pkcs11js.CKA_PRIVATE, value: false }, { type: pkcs11js.CKA_VERIFY, value: true },
           { type: pkcs11js.CKA_ENCRYPT, value: false }, { type: pkcs11js.CKA_WRAP, value: false }, { type: pkcs11js.CKA_DERIVE, value: false },
           { type: pkcs11js.CKA_LABEL, value: 'k' + i }, { type: pkcs11js.CKA_EC_PARAMS, value: P256 }],
          [{ type: pkcs11js.CKA_TOKEN, value: true }, { type: pkcs11js.CKA_PRIVATE, value: true }, { type: pkcs11js.CKA_SENSITIVE, value: true },
           { type: pkcs11js.CKA_EXTRACTABLE, value: true }, { type: pkcs11js.CKA_SIGN, value: true }, { type: pkcs11js.CKA_DECRYPT, value: false },
           { type: pkcs11js.CKA_UNWRAP, value: false }, { type: pkcs11js.CKA_DERIVE, value: false }, { type: pkcs11js.CKA_LABEL, value: 'k' + i }]);
      }
      p11.C_Logout(s); p11.C_Finalize();`;
    // Timed as kmu11's batch is: the whole process, start-up and login included.
    const t0 = process.hrtime.bigint();
    execFileSync(process.execPath, ['-e', code], { env: t.env, stdio: 'ignore' });
    return seconds(t0);
  } finally {
    t.done();
  }
}

/** The fault module's environment for the networked-HSM stand-in (faultmod.c, P11FAULT_REMOTE). */
export function remoteEnv(softhsm, delayUs) {
  return { P11FAULT_MODULE: softhsm, P11FAULT_DELAY_US: String(delayUs), P11FAULT_REMOTE: '1' };
}

/**
 * kmu11 = [node, dist/cli/main.js]; softhsm = libsofthsm2.so; fault = libp11fault.so.
 * Returns the raw figures and the ratios.
 */
export function measureBatches({ kmu11, softhsm, fault, delayUs = 2000, keys = 1000, parallel = 16, sample = 20, softKeys = 500, log = () => {} }) {
  const delayed = remoteEnv(softhsm, delayUs);
  log(`batch: ${keys} keys through the ${delayUs / 1000} ms-a-call remote stand-in, serial`);
  const latSerial = kmu11Batch({ kmu11, module: fault, keys, parallel: 1, extraEnv: delayed, tmpfs: true });
  log(`batch: ${keys} keys through the ${delayUs / 1000} ms-a-call remote stand-in, --parallel ${parallel}`);
  const latParallel = kmu11Batch({ kmu11, module: fault, keys, parallel, extraEnv: delayed, tmpfs: true });
  log(`batch: ${sample} pkcs11-tool processes through the same stand-in`);
  const toolPerKey = pkcs11ToolPerKey({ module: fault, sample, extraEnv: delayed, tmpfs: true });

  log(`batch: ${softKeys} keys on SoftHSM: kmu11 serial, --parallel ${parallel}, pkcs11js loop`);
  const softSerial = kmu11Batch({ kmu11, module: softhsm, keys: softKeys, parallel: 1 });
  const softParallel = kmu11Batch({ kmu11, module: softhsm, keys: softKeys, parallel });
  const jsLoop = pkcs11jsLoop({ module: softhsm, keys: softKeys });
  const r2 = (x) => Math.round(x * 100) / 100;
  return {
    networked: {
      stand_in: 'libp11fault remote mode over SoftHSM, token directory on tmpfs', delay_ms_per_call: delayUs / 1000, keys, parallel,
      kmu11_serial_s: r2(latSerial), kmu11_parallel_s: r2(latParallel),
      pkcs11_tool_s_per_key: Math.round(toolPerKey * 1000) / 1000, pkcs11_tool_sample: sample,
      pkcs11_tool_estimated_s: r2(toolPerKey * keys),
    },
    softhsm: { keys: softKeys, parallel, kmu11_serial_s: r2(softSerial), kmu11_parallel_s: r2(softParallel), pkcs11js_loop_s: r2(jsLoop) },
    ratios: {
      latency_parallel_vs_serial: r2(latSerial / latParallel),
      latency_vs_pkcs11_tool_per_key: r2((toolPerKey * keys) / latParallel),
      batch_vs_pkcs11js_loop: r2(jsLoop / softSerial),
      parallel_vs_serial_softhsm: r2(softSerial / softParallel),
    },
  };
}
