// Growth with the token: one-shot kmu11 commands (one process each, as scripts call
// `key_mgmt_util singlecmd`) on an embedded token holding N key objects, beside pkcs11-tool
// doing the same on the same token. Medians of `runs` runs per command and size.
//
//   kmu11                                        pkcs11-tool
//   loginHSM … genECCKeyPair -i 2 -l L           --keypairgen --key-type EC:prime256v1 --label L
//   loginHSM … findKey -l <one label>            --list-objects --type privkey --label <one label>
//   loginHSM … getAttribute -o <h> -a 3          --read-object --type pubkey --label <one label>
//   loginHSM … deleteKey -k <h>                  --delete-object --type privkey --label L
//
// The filler keys are EC P-256 token pairs made through pkcs11js straight on the embedded
// token (kmu11 sees them as keys made by another tool). Exported: measureScale(options).
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import pkcs11js from 'pkcs11js';

const CKA = { CLASS: 0x0, TOKEN: 0x1, PRIVATE: 0x2, LABEL: 0x3, KEY_TYPE: 0x100, SENSITIVE: 0x103, SIGN: 0x108, VERIFY: 0x10a, EC_PARAMS: 0x180 };
const P256 = Buffer.from('06082a8648ce3d030107', 'hex');
const LOGIN = ['loginHSM', '-u', 'CU', '-s', 'crypto_user', '-p', 'password'];

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

function timed(cmd, args, env) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { env, encoding: 'utf8', maxBuffer: 64 << 20 });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${cmd} ${args.filter((a) => a !== 'password').slice(0, 12).join(' ')}: exit ${r.status}\n${r.stdout}${r.stderr}`);
  return { ms, out: r.stdout };
}

/** Fills the token up to `total` key objects with token EC pairs (pkcs11js, one process). */
function fill(p11, session, from, total) {
  const mech = { mechanism: pkcs11js.CKM_EC_KEY_PAIR_GEN };
  for (let n = from; n < total; n += 2) {
    const label = `fill-${n / 2}`;
    p11.C_GenerateKeyPair(
      session,
      mech,
      [{ type: CKA.TOKEN, value: true }, { type: CKA.PRIVATE, value: false }, { type: CKA.VERIFY, value: true }, { type: CKA.LABEL, value: label }, { type: CKA.EC_PARAMS, value: P256 }],
      [{ type: CKA.TOKEN, value: true }, { type: CKA.PRIVATE, value: true }, { type: CKA.SENSITIVE, value: true }, { type: CKA.SIGN, value: true }, { type: CKA.LABEL, value: label }],
    );
  }
}

/**
 * `kmu11` is [node, main.js]; sizes ascending. Returns per size and command the medians (ms) of
 * kmu11 and pkcs11-tool and their ratio, and `scale_10k_vs_pkcs11_tool`-style worst ratio at the
 * largest size.
 */
export function measureScale({ kmu11, sizes = [100, 1000, 10000], runs = 5, log = () => {} }) {
  const home = mkdtempSync(join(os.tmpdir(), 'kmu11-scale-'));
  const env = { ...process.env };
  delete env.KMU11_MODULE;
  try {
    const k = (...args) => timed(kmu11[0], [...kmu11.slice(1), '--home', home, 'singlecmd', ...LOGIN, ...args], env);
    const info = JSON.parse(execFileSync(kmu11[0], [...kmu11.slice(1), '--home', home, '--json', 'info'], { env, encoding: 'utf8' }));
    const pin = readFileSync(info.userPinFile, 'utf8').trim();
    const tenv = { ...env, SOFTHSM2_CONF: info.softhsmConf };
    const tool = (...args) =>
      timed('pkcs11-tool', ['--module', info.modulePath, '--token-label', info.token.label, '--login', '--pin', pin, ...args], tenv);

    // The filler goes in through pkcs11js in this process, so SoftHSM must read kmu11's conf.
    process.env.SOFTHSM2_CONF = info.softhsmConf;
    const p11 = new pkcs11js.PKCS11();
    p11.load(info.modulePath);
    p11.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
    const slot = p11.C_GetSlotList(true).find((s) => p11.C_GetTokenInfo(s).label.trim() === info.token.label);
    const session = p11.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
    p11.C_Login(session, pkcs11js.CKU_USER, pin);

    const results = [];
    let objects = 0;
    try {
      for (const size of sizes) {
        log(`scale: filling the token to ${size} key objects`);
        fill(p11, session, objects, size);
        objects = size;
        const probe = `fill-${Math.floor(size / 4)}`;
        // The first kmu11 command on a grown token meets the new keys once (handles for them);
        // that one-time cost is reported apart, the medians are of the runs after it.
        const first = k('findKey', '-l', probe);
        const found = [...first.out.matchAll(/\b(\d{6,})\b/g)].map((m) => Number(m[1]));
        if (found.length === 0) throw new Error(`findKey -l ${probe} found nothing:\n${first.out}`);
        const times = { genECCKeyPair: [[], []], findKey: [[], []], getAttribute: [[], []], deleteKey: [[], []] };
        for (let i = 0; i < runs; i++) {
          const g = k('genECCKeyPair', '-i', '2', '-l', `scale-k-${size}-${i}`);
          const m = /private key handle:\s*(\d+)/.exec(g.out);
          if (!m) throw new Error(`genECCKeyPair printed no handle:\n${g.out}`);
          times.genECCKeyPair[0].push(g.ms);
          times.genECCKeyPair[1].push(tool('--keypairgen', '--key-type', 'EC:prime256v1', '--label', `scale-t-${size}-${i}`).ms);
          times.findKey[0].push(k('findKey', '-l', probe).ms);
          times.findKey[1].push(tool('--list-objects', '--type', 'privkey', '--label', probe).ms);
          times.getAttribute[0].push(k('getAttribute', '-o', String(found[0]), '-a', '3').ms);
          times.getAttribute[1].push(tool('--read-object', '--type', 'pubkey', '--label', probe).ms);
          times.deleteKey[0].push(k('deleteKey', '-k', m[1]).ms);
          times.deleteKey[1].push(tool('--delete-object', '--type', 'privkey', '--label', `scale-t-${size}-${i}`).ms);
        }
        const row = { objects: size, first_command_ms: Math.round(first.ms) };
        for (const [cmd, [kt, tt]] of Object.entries(times)) {
          const a = median(kt), b = median(tt);
          row[cmd] = { kmu11_ms: Math.round(a), pkcs11_tool_ms: Math.round(b), ratio: Math.round((a / b) * 100) / 100 };
        }
        log(`scale: ${size} objects: ${Object.keys(times).map((c) => `${c} ${row[c].ratio}x`).join(', ')}`);
        results.push(row);
      }
    } finally {
      p11.C_Logout(session);
      p11.C_CloseSession(session);
      p11.C_Finalize();
    }
    const last = results[results.length - 1];
    const worst = Math.max(...['genECCKeyPair', 'findKey', 'getAttribute', 'deleteKey'].map((c) => last[c].ratio));
    return { sizes: results, worst_ratio_at_largest: worst, largest: last.objects };
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}
