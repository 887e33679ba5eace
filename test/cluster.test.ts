// -min_srv / -timeout and -attest on the embedded and generic backends, and the waiting logic
// against a cluster double whose synchronisation the test controls.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOGIN, kmu11, makeHome, pairHandles } from './helpers/cli.js';
import { normalize, pageExamples } from './helpers/pages.js';
import { embeddedToken, objectCount } from './helpers/oracle.js';
import { makeToken, type TestToken } from './helpers/softhsm.js';
import { waitForServers } from '../src/backend/cluster.js';
import { mismatches } from '../src/backend/attest.js';

/** The generation's lines (after loginHSM's own "Cluster Status"). */
const gen = (stdout: string) => stdout.slice(stdout.indexOf('Cfm3GenerateKeyPair'));

/** A cluster whose HSMs copy a key only when the test says so, on a clock the test turns. */
function clusterDouble(hsms: number) {
  let clock = 0;
  let copies = 1;
  return {
    now: () => clock,
    sleep: async (ms: number) => {
      clock += ms;
    },
    sync: (n: number) => (copies = Math.min(hsms, n)),
    synced: (min: number) => async () => copies >= min,
    get clock() {
      return clock;
    },
  };
}

describe('waiting for -min_srv HSMs', () => {
  it('returns once the cluster has the key on enough HSMs', async () => {
    const c = clusterDouble(3);
    let polls = 0;
    const synced = c.synced(3);
    await waitForServers({
      minSrv: 3,
      timeout: 60,
      intervalMs: 1000,
      now: c.now,
      sleep: c.sleep,
      synced: async () => {
        if (++polls === 5) c.sync(3);
        return synced();
      },
    });
    expect(polls).toBe(5);
    expect(c.clock).toBe(4000);
  });

  it('fails when -timeout passes first (no timeout: waits on)', async () => {
    const c = clusterDouble(3);
    await expect(waitForServers({ minSrv: 3, timeout: 5, intervalMs: 1000, now: c.now, sleep: c.sleep, synced: c.synced(3) })).rejects.toMatchObject({
      code: 0x01,
      detail: expect.stringMatching(/not synchronized to 3 HSMs within 5 seconds/),
    });
    expect(c.clock).toBe(5000);
    const d = clusterDouble(3);
    let polls = 0;
    await waitForServers({ minSrv: 2, intervalMs: 1000, now: d.now, sleep: d.sleep, synced: async () => ++polls > 1000 || (polls === 500 && d.sync(2) >= 2) });
    expect(d.clock).toBe(499_000);
  });

  it('stops when interrupted', async () => {
    const c = clusterDouble(3);
    const ac = new AbortController();
    let polls = 0;
    await expect(
      waitForServers({ minSrv: 3, signal: ac.signal, now: c.now, sleep: c.sleep, synced: async () => (++polls === 3 && ac.abort(), false) }),
    ).rejects.toMatchObject({ detail: expect.stringMatching(/interrupted/) });
  });

  it('compares pins field by field', () => {
    const a = { module: { path: '/m', sha256: 'aa' }, hsms: [{ serial: '1', firmware: '2.6.16' }] } as any;
    expect(mismatches(a, structuredClone(a))).toEqual([]);
    const b = structuredClone(a);
    b.hsms[0].firmware = '2.7.0';
    b.module.sha256 = 'bb';
    expect(mismatches(a, b)).toEqual(['module.sha256', 'hsms.0.firmware']);
  });
});

describe('embedded backend', () => {
  let h: ReturnType<typeof makeHome>;
  beforeAll(() => {
    h = makeHome();
  });
  afterAll(() => h.cleanup());
  const run = (...args: string[]) => kmu11(['singlecmd', ...LOGIN, ...args], { env: h.env });

  it('one HSM: -min_srv 2 is refused and nothing is made; -min_srv 1 -timeout works', () => {
    const r = run('genECCKeyPair', '-i', '2', '-l', 'two', '-min_srv', '2', '-timeout', '5');
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/returned: 0x0d/);
    expect(r.stderr).toMatch(/-min_srv 2: the embedded backend spans 1 HSM; the key could never be synchronized to 2/);
    expect(objectCount(embeddedToken(h.env))).toBe(0);
    const ok = run('genECCKeyPair', '-i', '2', '-l', 'one', '-min_srv', '1', '-timeout', '5');
    expect(ok.status, ok.stderr).toBe(0);
    expect(gen(ok.stdout).match(/Node id \d+/g)).toEqual(['Node id 0']);
  });

  it("-attest: the DSA page's example passes as printed (a 2-HSM config), a changed pin fails with nothing made, repin fixes it", () => {
    writeFileSync(join(h.home, 'config.json'), JSON.stringify({ servers: 2 }));
    const page = pageExamples('kmu-genDSAKeyPair.md').find((e) => e.command.includes('-attest'))!;
    // Sharing and quorum are the users helper's; the attestation and the two HSMs are checked here.
    const cmd = page.command.replace(' -m_value 2 -u 4,6', '');
    const r = run(...cmd.split(' '));
    expect(r.status, r.stderr).toBe(0);
    const ours = r.stdout.split('\n');
    const from = ours.findIndex((l) => l.includes('Cfm3GenerateKeyPair')) - 1;
    expect(normalize(ours.slice(from))).toEqual(normalize(page.output));
    expect(ours.slice(from).filter((l) => /Node id/.test(l)).map((l) => l.trim())).toEqual(page.output.filter((l) => /Node id/.test(l)).map((l) => l.trim()));

    const before = objectCount(embeddedToken(h.env));
    const dir = join(h.home, 'attest');
    const file = join(dir, readdirSync(dir)[0]!);
    const pins = JSON.parse(readFileSync(file, 'utf8'));
    expect(pins.module.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(pins.token).toMatchObject({ model: 'SoftHSM v2' });
    pins.token.firmwareVersion = '9.9';
    writeFileSync(file, JSON.stringify(pins));
    const bad = run('genECCKeyPair', '-i', '2', '-l', 'tampered', '-attest');
    expect(bad.status).toBe(1);
    expect(bad.stdout).toMatch(/Cfm3GenerateKeyPair returned: 0x0c : HSM Error: Attestation check failed\n\n\s+Attestation Check : \[FAIL\]/);
    expect(bad.stderr).toMatch(/token\.firmwareVersion differ/);
    expect(objectCount(embeddedToken(h.env))).toBe(before);
    expect(kmu11(['attest'], { env: h.env }).status).toBe(1);
    const re = kmu11(['attest', '--repin'], { env: h.env });
    expect(re.stdout).toMatch(/Attestation pins recorded/);
    const ok = run('genECCKeyPair', '-i', '2', '-l', 'again', '-attest');
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/Attestation Check : \[PASS\]/);
    pairHandles(ok.stdout);
  });
});

describe('generic backend', () => {
  let t: TestToken;
  let h: ReturnType<typeof makeHome>;
  beforeAll(() => {
    t = makeToken('cluster-generic');
    h = makeHome();
  });
  afterAll(() => {
    t.cleanup();
    h.cleanup();
  });

  it('spans what the config says; -attest with pins given in the config', () => {
    const config = join(h.home, '..', 'generic.json');
    const env = { ...h.env, SOFTHSM2_CONF: t.conf, KMU11_CONFIG: config };
    const login = ['loginHSM', '-u', 'CU', '-s', 'any', '-p', t.userPin];
    writeFileSync(config, JSON.stringify({ module: t.module, token: t.label }));
    const one = kmu11(['singlecmd', ...login, 'genECCKeyPair', '-i', '2', '-l', 'g', '-min_srv', '2'], { env });
    expect(one.status).toBe(1);
    expect(one.stderr).toMatch(/the generic backend spans 1 HSM/);
    const show = kmu11(['attest', '--show'], { env });
    expect(show.status, show.stderr).toBe(0);
    const facts = JSON.parse(show.stdout);
    writeFileSync(config, JSON.stringify({ module: t.module, token: t.label, servers: 3, attest: facts }));
    const ok = kmu11(['singlecmd', ...login, 'genECCKeyPair', '-i', '2', '-l', 'g', '-min_srv', '3', '-attest'], { env });
    expect(ok.status, ok.stderr).toBe(0);
    expect(gen(ok.stdout).match(/Node id \d+/g)).toEqual(['Node id 2', 'Node id 1', 'Node id 0']);
    writeFileSync(config, JSON.stringify({ module: t.module, token: t.label, attest: { ...facts, token: { ...facts.token, serialNumber: 'other' } } }));
    const bad = kmu11(['singlecmd', ...login, 'genECCKeyPair', '-i', '2', '-l', 'g2', '-attest'], { env });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/token\.serialNumber differ from the pins \(config file\)/);
  });
});
