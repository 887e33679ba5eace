// kmu11's generic backend on a second real token: tpm2-pkcs11 over swtpm (test/helpers/tpm2.ts).
// Generation, find, attributes, export and delete as far as the token allows; what it cannot
// do (-sess, a key both extractable and sensitive) refused before anything is made.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kmu11, makeHome, pairHandles } from './helpers/cli.js';
import { startTpm2Token, type Tpm2Token } from './helpers/tpm2.js';

let tpm: Tpm2Token;
let h: ReturnType<typeof makeHome>;
let env: NodeJS.ProcessEnv;
let login: string[];

/** The module writes "ERROR: …" lines of its own to stderr; kmu11's are the others. */
const ours = (stderr: string) => stderr.split('\n').filter((l) => l && !/^(ERROR|WARNING):/.test(l));
const run = (...args: string[]) => kmu11(['singlecmd', ...login, ...args], { env });
const tool = (...args: string[]) =>
  execFileSync('pkcs11-tool', ['--module', tpm.module, '--token-label', tpm.label, '--login', '--pin', tpm.userPin, ...args], {
    env: tpm.env,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
const keyObjects = () => (tool('--list-objects').match(/^(Public|Private) Key Object/gm) ?? []).length;

beforeAll(() => {
  tpm = startTpm2Token();
  h = makeHome();
  env = { ...tpm.env, ...h.env, KMU11_MODULE: tpm.module, KMU11_TOKEN: tpm.label };
  login = ['loginHSM', '-u', 'CU', '-s', 'any', '-p', tpm.userPin];
});
afterAll(() => {
  h?.cleanup();
  tpm?.stop();
});

describe('tpm2-pkcs11 on swtpm', () => {
  it('generates P-256/384/521 pairs with -nex; refuses -sess and extractable keys clearly, making nothing', () => {
    const r = run('genECCKeyPair', '-i', '2', '-l', 'tpm-p256', '-nex', '-id', 'k256', 'genECCKeyPair', '-i', '14', '-l', 'tpm-p384', '-nex', 'genECCKeyPair', '-i', '15', '-l', 'tpm-p521', '-nex');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.match(/public key handle: \d+\s+private key handle: \d+/g)).toHaveLength(3);
    const before = keyObjects();
    expect(before).toBe(6);
    const ext = run('genECCKeyPair', '-i', '2', '-l', 'tpm-ext');
    expect(ext.status).toBe(1);
    expect(ours(ext.stderr)).toEqual(["Error: tpm2-pkcs11 refuses a private key both extractable and sensitive (kmu's default without -nex); add -nex"]);
    const sess = run('genECCKeyPair', '-i', '2', '-l', 'tpm-sess', '-nex', '-sess');
    expect(sess.status).toBe(1);
    expect(ours(sess.stderr)).toEqual(['Error: -sess: tpm2-pkcs11 makes no session objects; every key it makes is a token key']);
    expect(keyObjects()).toBe(before);
  });

  it('listECCCurveIds finds the curves by token-object probes and leaves none behind', () => {
    const before = keyObjects();
    const r = run('listECCCurveIds');
    expect(r.status, r.stderr).toBe(0);
    for (const id of [2, 14, 15]) expect(r.stdout).toMatch(new RegExp(`^\\s+${id} : NID_`, 'm'));
    expect(r.stdout).not.toMatch(/NID_sect/);
    expect(keyObjects()).toBe(before);
  });

  it('findKey, getAttribute, exportPubKey (P-256 and P-521 PEMs that parse), deleteKey; handles stable across processes', () => {
    const f = run('findKey', '-l', 'tpm-p256');
    expect(f.status, f.stderr).toBe(0);
    const [pub, priv] = /^(?:Handles of matching keys:\t)?(\d+), (\d+)$/m.exec(f.stdout)!.slice(1).map(Number);
    const again = run('findKey', '-id', 'k256');
    expect(again.stdout).toMatch(new RegExp(`^(?:Handles of matching keys:\\t)?${pub}, ${priv}$`, 'm'));
    const g = run('getAttribute', '-o', String(priv), '-a', '512');
    expect(g.status, g.stderr).toBe(0);
    expect(g.stdout).toMatch(/OBJ_ATTR_SENSITIVE\n0x01/);
    expect(g.stdout).toMatch(/OBJ_ATTR_EXTRACTABLE\n0x00/);
    expect(g.stdout).toMatch(/OBJ_ATTR_LABEL\ntpm-p256/);
    for (const label of ['tpm-p256', 'tpm-p521']) {
      const k = run('findKey', '-l', label, '-c', '2');
      const handle = /^(?:Handles of matching keys:\t)?(\d+)$/m.exec(k.stdout)![1]!;
      const file = join(h.home, `${label}.pem`);
      const e = run('exportPubKey', '-k', handle, '-out', file);
      expect(e.status, e.stderr).toBe(0);
      const text = execFileSync('openssl', ['pkey', '-pubin', '-in', file, '-noout', '-text'], { encoding: 'utf8' });
      expect(text).toMatch(label === 'tpm-p256' ? /Public-Key: \(256 bit\)/ : /Public-Key: \(521 bit\)/);
    }
    const d = run('deleteKey', '-k', String(priv), 'deleteKey', '-k', String(pub), 'findKey', '-l', 'tpm-p256');
    expect(d.status, d.stderr).toBe(0);
    expect(d.stdout).toMatch(/Total number of keys present: 0/);
    expect(tool('--list-objects')).not.toMatch(/tpm-p256/);
  });

  it("keys another tool made there list, read, export and delete", () => {
    tool('--keypairgen', '--key-type', 'EC:secp384r1', '--label', 'by-tool', '--id', '0a0b');
    const f = run('findKey', '-l', 'by-tool');
    const [pub, priv] = /^(?:Handles of matching keys:\t)?(\d+), (\d+)$/m.exec(f.stdout)!.slice(1).map(Number);
    expect(run('getAttribute', '-o', String(pub), '-a', '3').stdout).toMatch(/OBJ_ATTR_LABEL\nby-tool/);
    const file = join(h.home, 'by-tool.pem');
    expect(run('exportPubKey', '-k', String(pub), '-out', file).status).toBe(0);
    expect(execFileSync('openssl', ['pkey', '-pubin', '-in', file, '-noout', '-text'], { encoding: 'utf8' })).toMatch(/384 bit/);
    const d = run('deleteKey', '-k', String(priv), 'deleteKey', '-k', String(pub));
    expect(d.status, d.stderr).toBe(0);
    expect(tool('--list-objects')).not.toMatch(/by-tool/);
    pairHandles(run('genECCKeyPair', '-i', '2', '-l', 'after', '-nex').stdout);
  });
});
