// The cloudhsm backend: SDK 5's PKCS#11 rules run against a real SoftHSM token (PIN
// "user:password", the CloudHSM policy applied), and its CloudHSM CLI calls against a fake
// cloudhsm-cli that replays the documented JSON (test/fixtures/cloudhsm-cli/, README there).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { kmu11, pairHandles, startKmu11 } from './helpers/cli.js';
import { softhsmModule } from './helpers/softhsm.js';
import { normalize, pageExamples } from './helpers/pages.js';
import { CloudHsmCli } from '../src/backend/cloudhsmCli.js';
import { CommandRunner } from '../src/kmu11.js';

const FAKE = fileURLToPath(new URL('./fixtures/cloudhsm-cli/fake-cloudhsm-cli.mjs', import.meta.url));
const USER = 'cu3';
const PASSWORD = 'pw3-secret';
const LOGIN = ['loginHSM', '-u', 'CU', '-s', USER, '-p', PASSWORD];
const LABEL = 'cavium-test';

let dir: string;
let conf: string;
let env: NodeJS.ProcessEnv;
let cliDir: string;
let module: string;

type Rule = { match: string; reply: string | object; login?: boolean; exit?: number; create?: boolean };
const rules = (r: Rule[]) => writeFileSync(join(cliDir, 'rules.json'), JSON.stringify(r));
const calls = (): Array<{ argv: string[]; pin: string | null; role: string | null }> => {
  const p = join(cliDir, 'calls.jsonl');
  return existsSync(p) ? readFileSync(p, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)) : [];
};
const state = (name: string, value: string) => writeFileSync(join(cliDir, name), value);

/** Token objects with their class, label, CKA_ID and CKA_PRIVATE, read by PyKCS11. */
function objects(): Array<{ cls: string; label: string; id: string; priv: boolean }> {
  const script = `
import json, PyKCS11
from PyKCS11 import *
lib = PyKCS11Lib(); lib.load(${JSON.stringify(module)})
slot = [s for s in lib.getSlotList(tokenPresent=True) if lib.getTokenInfo(s).label.strip() == ${JSON.stringify(LABEL)}][0]
s = lib.openSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION)
s.login(${JSON.stringify(`${USER}:${PASSWORD}`)})
out = []
for o in s.findObjects():
    c, l, i, p = s.getAttributeValue(o, [CKA_CLASS, CKA_LABEL, CKA_ID, CKA_PRIVATE])
    out.append({'cls': CKO[c], 'label': l, 'id': bytes(i).decode('utf8', 'replace'), 'priv': bool(p)})
print(json.dumps(out))
`;
  const r = spawnSync('/usr/bin/python3', ['-c', script], { env: { ...process.env, SOFTHSM2_CONF: conf }, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout);
}

function clientConfig(servers: number, availabilityCheck = true) {
  writeFileSync(
    join(dir, 'cloudhsm-pkcs11.cfg'),
    JSON.stringify({
      clusters: [{ type: 'hsm1', cluster: { hsm_ca_file: '/opt/cloudhsm/etc/customerCA.crt', servers: Array.from({ length: servers }, (_, i) => ({ hostname: `10.0.0.${i + 1}`, port: 2223, enable: true })) } }],
      logging: {},
      disable_key_availability_check: !availabilityCheck,
    }),
  );
}

const run = (...cmds: string[][]) => kmu11(['singlecmd', ...LOGIN, ...cmds.flat()], { env });

/** A CommandRunner in this process on the test's token, with the test's environment. */
async function inProcess<T>(fn: (s: CommandRunner) => Promise<T>): Promise<T> {
  const saved = { ...process.env };
  Object.assign(process.env, env);
  const s = new CommandRunner({ home: env.KMU11_HOME, config: env.KMU11_CONFIG });
  try {
    return await fn(s);
  } finally {
    await s.close();
    process.env = saved;
  }
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'kmu11-cloudhsm-'));
  module = softhsmModule();
  const tokens = join(dir, 'tokens');
  mkdirSync(tokens);
  conf = join(dir, 'softhsm2.conf');
  writeFileSync(conf, `directories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`);
  // SDK 5's PIN is "<CU name>:<password>": the SoftHSM token's user PIN is exactly that.
  execFileSync('softhsm2-util', ['--init-token', '--free', '--label', LABEL, '--so-pin', '12345678', '--pin', `${USER}:${PASSWORD}`], {
    env: { ...process.env, SOFTHSM2_CONF: conf },
    stdio: 'pipe',
  });
  cliDir = join(dir, 'cli');
  mkdirSync(cliDir);
  clientConfig(3);
  const config = join(dir, 'config.json');
  writeFileSync(
    config,
    JSON.stringify({
      backend: 'cloudhsm',
      module,
      token: LABEL,
      cloudhsmCli: FAKE,
      clientConfig: join(dir, 'cloudhsm-pkcs11.cfg'),
      users: { cu3: 3, cu4: 4, cu6: 6 },
    }),
  );
  env = {
    KMU11_HOME: join(dir, 'home'),
    KMU11_CONFIG: config,
    KMU11_MODULE: '',
    KMU11_TOKEN: '',
    KMU11_CLOUDHSM_CLI: '',
    KMU11_CLOUDHSM_CONFIG: '',
    KMU11_SYNC_POLL_MS: '100',
    SOFTHSM2_CONF: conf,
    FAKE_CLOUDHSM_DIR: cliDir,
    FAKE_SOFTHSM_MODULE: module,
    FAKE_SOFTHSM_TOKEN: LABEL,
    FAKE_SOFTHSM_PIN: `${USER}:${PASSWORD}`,
  };
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
beforeEach(() => {
  rmSync(join(cliDir, 'calls.jsonl'), { force: true });
  rules([]);
  state('coverage', 'full');
  state('firmware-major', '2');
});

describe('SDK 5 PKCS#11 policy on SoftHSM', () => {
  it('refuses DSA, curve 1 (0xb3, as the page) and curves 3-12 before anything is made', () => {
    const r = run(['genDSAKeyPair', '-m', '2048', '-l', 'd'], ['genECCKeyPair', '-i', '1', '-l', 'ecc1'], ['genECCKeyPair', '-i', '7', '-l', 'e7']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/SDK 5 makes no DSA keys/);
    expect(r.stdout).toMatch(/Cfm3GenerateKeyPair returned: 0xb3 : HSM Error: This operation violates the current configured\/FIPS policies/);
    expect(r.stderr).toMatch(/NID_sect283k1 \(id 7\) does not exist on CloudHSM Client SDK 5; it makes curve ids 2, 13, 14 and 15/);
    expect(objects()).toEqual([]);
    expect(calls()).toEqual([]);
  });

  it('makes curves 2, 13, 14, 15 through PKCS#11 with a unique CKA_ID per pair, every attribute at SDK 5 values, stable handles', () => {
    const r = run(...[2, 13, 14, 15].map((i) => ['genECCKeyPair', '-i', String(i), '-l', `pol${i}`]), ['genECCKeyPair', '-i', '2', '-l', 'pol2', '-id', 'given']);
    expect(r.status, r.stderr).toBe(0);
    expect(calls()).toEqual([]); // no CloudHSM CLI without -u/-m_value/-min_srv>2
    const objs = objects().filter((o) => o.label.startsWith('pol'));
    expect(objs).toHaveLength(10);
    // Public keys: CKA_PRIVATE true (SDK 5 firmware accepts only its default).
    expect(objs.every((o) => o.priv)).toBe(true);
    const ids = objs.filter((o) => o.cls === 'CKO_PRIVATE_KEY').map((o) => o.id);
    expect(new Set(ids).size).toBe(5);
    expect(ids.filter((i) => /^kmu11-[0-9a-f]{16}$/.test(i))).toHaveLength(4);
    expect(ids).toContain('given');
    // A handle printed by one process names the same key in the next (SDK 5 handles are per session).
    const all = [...r.stdout.matchAll(/public key handle: (\d+)\s+private key handle: (\d+)/g)].map((m) => [Number(m[1]), Number(m[2])]);
    const f = run(['findKey', '-l', 'pol14']);
    expect(f.stdout).toContain(all[2]!.slice().sort((a, b) => a - b).join(', '));
    // The same -id again is refused, nothing made.
    const again = run(['genECCKeyPair', '-i', '2', '-l', 'pol-dup', '-id', 'given']);
    expect(again.status).toBe(1);
    expect(again.stdout).toMatch(/returned: 0x07/);
  });

  it('logs in with the PIN <user>:<password>; a wrong password is 0xa5', () => {
    const bad = kmu11(['singlecmd', 'loginHSM', '-u', 'CU', '-s', USER, '-p', 'wrong'], { env });
    expect(bad.status).toBe(1);
    expect(bad.stdout).toMatch(/0xa5/);
    expect(bad.stdout + bad.stderr).not.toContain('wrong');
  });
});

describe('through CloudHSM CLI (documented transcripts)', () => {
  it('-u/-m_value: one generate-asymmetric-pair call, shared and with quorum, credentials only in its environment; getKeyInfo as the page', () => {
    rules([
      { match: '^key generate-asymmetric-pair ec ', reply: 'doc-key-generate-asymmetric-pair-ec.json', create: true },
      { match: '^key list ', reply: 'doc-key-list-verbose.json' },
    ]);
    const r = run(['genECCKeyPair', '-i', '13', '-l', 'shared', '-m_value', '2', '-u', '4,6']);
    expect(r.status, r.stderr).toBe(0);
    const { priv } = pairHandles(r.stdout);
    const gen = calls();
    expect(gen).toHaveLength(1);
    const argv = gen[0]!.argv.join(' ');
    expect(argv).toMatch(/^key generate-asymmetric-pair ec --curve secp224r1 --public-label shared --private-label shared /);
    expect(argv).toMatch(/--public-attributes verify=true encrypt=false wrap=false derive=false id=0x[0-9a-f]+ /);
    expect(argv).toMatch(/--private-attributes sign=true decrypt=false unwrap=false derive=false extractable=true id=0x[0-9a-f]+ /);
    expect(argv).toMatch(/--share-crypto-users cu4 cu6 --manage-private-key-quorum-value 2 --use-private-key-quorum-value 2$/);
    expect(gen[0]).toMatchObject({ pin: `${USER}:${PASSWORD}`, role: 'crypto-user' });
    expect(argv).not.toContain(PASSWORD);
    expect(objects().filter((o) => o.label === 'shared')).toHaveLength(2);

    const info = run(['getKeyInfo', '-k', String(priv)]);
    expect(info.status, info.stderr).toBe(0);
    const page = pageExamples('kmu-genDSAKeyPair.md').find((e) => e.command.startsWith('getKeyInfo'))!;
    const ours = info.stdout.split('\n');
    expect(normalize(ours.slice(ours.findIndex((l) => l.includes('Cfm3GetKey')) - 1))).toEqual(normalize(page.output));
    const list = calls().find((c) => c.argv[1] === 'list')!;
    expect(list.argv.join(' ')).toMatch(/--filter attr\.class=private-key attr\.label=shared attr\.id=0x[0-9a-f]+$/);
  });

  it("a CloudHSM CLI failure (error_code 1, exit status 0) fails the command and leaves nothing; unknown users are refused before it runs", () => {
    rules([{ match: '^key generate-asymmetric-pair ec ', reply: 'doc-quorum-failed.json', exit: 0 }]);
    const r = run(['genECCKeyPair', '-i', '2', '-l', 'qfail', '-m_value', '2', '-u', '4']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/Quorum Failed/);
    expect(objects().filter((o) => o.label === 'qfail')).toEqual([]);
    const n = calls().length;
    const u = run(['genECCKeyPair', '-i', '2', '-l', 'nouser', '-u', '99']);
    expect(u.status).toBe(1);
    expect(u.stderr).toMatch(/user id 99 is not a CloudHSM user kmu11 knows/);
    expect(calls().length).toBe(n);
    const s = run(['genECCKeyPair', '-i', '2', '-l', 'sess', '-u', '4', '-sess']);
    expect(s.status).toBe(1);
    expect(s.stderr).toMatch(/-sess with -u\/-m_value/);
  });

  it('setAttribute -a 1 goes through key set-attribute; a session key CloudHSM CLI cannot see is refused', async () => {
    rules([
      { match: 'attr\\.label=invisible', reply: { error_code: 0, data: { matched_keys: [], total_key_count: 0, returned_key_count: 0 } } },
      { match: '^key list ', reply: 'doc-key-list-verbose.json' },
      { match: '^key set-attribute ', reply: 'doc-key-set-attribute.json' },
    ]);
    // Session keys live as long as one kmu11 session: the API keeps it open across commands.
    await inProcess(async (s) => {
      await s.run('loginHSM', { userType: 'CU', user: USER, password: PASSWORD });
      const a = await s.run('genECCKeyPair', { curve: '2', label: 'invisible', sess: true });
      await expect(s.run('setAttribute', { handle: a.data.privateKey, attribute: 1, value: 1 })).rejects.toMatchObject({
        detail: expect.stringMatching(/CloudHSM CLI does not see this key/),
      });
      const b = await s.run('genECCKeyPair', { curve: '2', label: 'visible', sess: true });
      await s.run('setAttribute', { handle: b.data.privateKey, attribute: 1, value: 1 });
    });
    const set = calls().find((c) => c.argv[1] === 'set-attribute')!;
    expect(set.argv).toEqual(['key', 'set-attribute', '--filter', 'key-reference=0x000000000012000c', '--name', 'token', '--value', 'true']);
    expect(set).toMatchObject({ pin: `${USER}:${PASSWORD}`, role: 'crypto-user' });
  });
});

describe('-min_srv / -timeout on a 3-HSM cluster', () => {
  it('above the HSM count: refused, nothing made; up to 2: met by the key availability check', () => {
    const r = run(['genECCKeyPair', '-i', '2', '-l', 'ms4', '-min_srv', '4']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/-min_srv 4: the cloudhsm backend spans 3 HSMs/);
    // A failure, too, reports every HSM.
    expect(r.stdout.slice(r.stdout.indexOf('Cfm3GenerateKeyPair')).match(/Node id \d+ and err state 0x0000000d/g)).toEqual([
      'Node id 2 and err state 0x0000000d',
      'Node id 1 and err state 0x0000000d',
      'Node id 0 and err state 0x0000000d',
    ]);
    const ok = run(['genECCKeyPair', '-i', '2', '-l', 'ms2', '-min_srv', '2', '-timeout', '1']);
    expect(ok.status, ok.stderr).toBe(0);
    // One "Node id" line per HSM, highest first, as the page prints them.
    expect(ok.stdout).toMatch(/Node id 2 and err state 0x00000000 : HSM Return: SUCCESS\n\s+Node id 1 .*\n\s+Node id 0 /);
    expect(calls()).toEqual([]);
    expect(objects().filter((o) => o.label === 'ms4')).toEqual([]);
  });

  it('3: waits for full cluster-coverage; on -timeout the pair is destroyed and the command fails', async () => {
    rules([{ match: '^key list ', reply: 'doc-key-list-verbose.json' }]);
    state('coverage', 'partial');
    const t = run(['genECCKeyPair', '-i', '2', '-l', 'ms3-late', '-min_srv', '3', '-timeout', '1']);
    expect(t.status).toBe(1);
    expect(t.stderr).toMatch(/not synchronized to 3 HSMs within 1 seconds \(-timeout\); it was not created/);
    expect(objects().filter((o) => o.label === 'ms3-late')).toEqual([]);
    expect(calls().length).toBeGreaterThanOrEqual(2); // polled more than once

    // The test decides when the cluster has synchronised the key.
    const started = startKmu11(['singlecmd', ...LOGIN, 'genECCKeyPair', '-i', '2', '-l', 'ms3', '-min_srv', '3', '-timeout', '60'], { env });
    while (calls().length < 2 && !started.exited()) await new Promise((r) => setTimeout(r, 50));
    expect(started.exited()).toBe(false);
    state('coverage', 'full');
    const done = await started.done;
    expect(done.status, done.stderr).toBe(0);
    expect(objects().filter((o) => o.label === 'ms3')).toHaveLength(2);
  });
});

describe('-attest on cloudhsm (cluster hsm-info pinned)', () => {
  it('pins on first use, PASS with the page line, FAIL on a firmware change (nothing made), repin', () => {
    rules([{ match: '^cluster hsm-info', reply: 'doc-cluster-hsm-info.json', login: false }]);
    const first = run(['genECCKeyPair', '-i', '2', '-l', 'att1', '-attest']);
    expect(first.status, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/\n\s+Attestation Check : \[PASS\]\n\n\s+Cluster Error Status\n/);
    expect(calls().every((c) => c.pin === null)).toBe(true); // hsm-info needs no login
    state('firmware-major', '3');
    const bad = run(['genECCKeyPair', '-i', '2', '-l', 'att2', '-attest']);
    expect(bad.status).toBe(1);
    expect(bad.stdout).toMatch(/returned: 0x0c .*\n\n\s+Attestation Check : \[FAIL\]/);
    expect(bad.stderr).toMatch(/hsms\.1\.firmware/);
    expect(objects().filter((o) => o.label === 'att2')).toEqual([]);
    const re = kmu11(['attest', '--repin'], { env });
    expect(re.status, re.stderr).toBe(0);
    const check = kmu11(['attest'], { env });
    expect(check.stdout.trim()).toBe('Attestation Check : [PASS]');
  });
});

describe('users and the CloudHSM CLI layer', () => {
  it('listUsers: ids from the config, others numbered once and durably', async () => {
    rules([{ match: '^user list', reply: 'doc-user-list.json', login: false }]);
    const list = () => inProcess(async (s) => (await s.connect()).backend.listUsers!());
    const a = await list();
    expect(a.map((u) => [u.id, u.name, u.type])).toEqual([
      [3, 'cu3', 'CU'],
      [4, 'cu4', 'CU'],
      [6, 'cu6', 'CU'],
      [7, 'admin', 'CO'],
      [8, 'app_user', 'AU'],
    ]);
    expect(a.find((u) => u.name === 'cu6')).toMatchObject({ mofnPubKey: true });
    expect(await list()).toEqual(a);
  });

  it('reads error_code, not the exit status; passes credentials only in the environment; pages through key list', async () => {
    const cli = new CloudHsmCli({ path: FAKE, env: { ...process.env, FAKE_CLOUDHSM_DIR: cliDir, CLOUDHSM_PIN: 'leak:leak' } });
    rules([
      { match: '^key delete ', reply: 'doc-key-delete.json', exit: 3 },
      { match: '^key share ', reply: 'doc-quorum-failed.json', exit: 0 },
      { match: 'starting-token 1', reply: { error_code: 0, data: { matched_keys: [{ 'key-reference': '0x2', attributes: {} }], next_token: null } } },
      { match: '^key list ', reply: { error_code: 0, data: { matched_keys: [{ 'key-reference': '0x1', attributes: {} }], next_token: '1' } } },
      { match: '^user list', reply: { error_code: 0 }, exit: 0, login: false },
      { match: '^cluster hsm-info', reply: 'README.md', login: false },
    ]);
    await expect(cli.deleteKey('0x1')).rejects.toThrow(/not logged in/);
    cli.setCredentials({ username: 'cu3', password: 'pw', role: 'crypto-user' });
    await cli.deleteKey('0x1'); // error_code 0 with exit status 3: success
    await expect(cli.share('0x1', 'cu4', true)).rejects.toThrow(/Quorum Failed/);
    expect((await cli.listKeys(['attr.label=x'])).map((k) => k.reference)).toEqual(['0x1', '0x2']);
    await expect(cli.hsmInfo()).rejects.toThrow(/no JSON answer/);
    const seen = calls();
    expect(seen[0]).toMatchObject({ pin: 'cu3:pw', role: 'crypto-user' });
    expect(seen.find((c) => c.argv[0] === 'cluster')).toMatchObject({ pin: null, role: null });
    expect(seen.flatMap((c) => c.argv).some((a) => a.includes('pw'))).toBe(false);
  });
});
