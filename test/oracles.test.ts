// What genECCKeyPair and genDSAKeyPair made, checked with tools that share no code with
// kmu11: PyKCS11 for every attribute, p11tool --test-sign for each pair, and a signature
// made by pkcs11-tool verified by openssl against the exported public key.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOGIN, kmu11, makeHome } from './helpers/cli.js';
import { embeddedToken, pkcs11Tool, pykcs11, type TokenRef } from './helpers/oracle.js';
import { CURVES } from '../src/kmu/curves.js';

let h: ReturnType<typeof makeHome>;
let token: TokenRef;
let supported: number[];

interface Made {
  id: string;
  label: string;
  kind: 'EC' | 'DSA';
  curveOid?: string;
  nex: boolean;
}
const made: Made[] = [];
const PRIME_CURVES = new Set(CURVES.filter((c) => c.nid.includes('prime') || c.nid.includes('secp')).map((c) => c.oid));
/** pkcs11-tool 0.23 builds an EVP_PKEY from a token's EC public key for P-256 only. */
const NIST_CURVES = new Set([CURVES[1]!.oid]);

beforeAll(() => {
  h = makeHome();
  const list = kmu11(['--json', 'singlecmd', ...LOGIN, 'listECCCurveIds'], { env: h.env });
  expect(list.status, list.stderr).toBe(0);
  supported = JSON.parse(list.stdout.trim().split('\n')[1]!).result.supported.map((c: { id: number }) => c.id);
  const words: string[] = [...LOGIN];
  for (const id of supported) {
    const m: Made = { id: `ec-${id}`, label: `curve ${id}`, kind: 'EC', curveOid: CURVES[id - 1]!.oid, nex: id % 2 === 0 };
    made.push(m);
    words.push('genECCKeyPair', '-i', String(id), '-l', m.label, '-id', m.id, ...(m.nex ? ['-nex'] : []));
  }
  for (const nex of [false, true]) {
    const m: Made = { id: `dsa-${nex ? 'nex' : 'ex'}`, label: 'dsa key', kind: 'DSA', nex };
    made.push(m);
    words.push('genDSAKeyPair', '-m', '2048', '-l', m.label, '-id', m.id, ...(nex ? ['-nex'] : []));
  }
  words.push('genECCKeyPair', '-i', '2', '-l', 'session only', '-id', 'sess-1', '-sess');
  const r = kmu11(['singlecmd', ...words], { env: h.env });
  expect(r.status, r.stdout + r.stderr).toBe(0);
  token = embeddedToken(h.env);
});
afterAll(() => h.cleanup());

describe('what was made, seen by independent tools', () => {
  it('the embedded SoftHSM makes P-256, P-384 and P-521 at least', () => {
    for (const id of [2, 14, 15]) expect(supported).toContain(id);
  });

  it('has every attribute kmu asked for (PyKCS11)', () => {
    const out = pykcs11(
      token,
      `
names = {'CLASS': CKA_CLASS, 'KEY_TYPE': CKA_KEY_TYPE, 'LABEL': CKA_LABEL, 'ID': CKA_ID, 'TOKEN': CKA_TOKEN, 'PRIVATE': CKA_PRIVATE,
         'SENSITIVE': CKA_SENSITIVE, 'EXTRACTABLE': CKA_EXTRACTABLE, 'NEVER_EXTRACTABLE': CKA_NEVER_EXTRACTABLE, 'LOCAL': CKA_LOCAL,
         'SIGN': CKA_SIGN, 'VERIFY': CKA_VERIFY, 'DECRYPT': CKA_DECRYPT, 'ENCRYPT': CKA_ENCRYPT, 'UNWRAP': CKA_UNWRAP, 'WRAP': CKA_WRAP,
         'DERIVE': CKA_DERIVE, 'SIGN_RECOVER': CKA_SIGN_RECOVER, 'VERIFY_RECOVER': CKA_VERIFY_RECOVER,
         'KEY_GEN_MECHANISM': CKA_KEY_GEN_MECHANISM, 'EC_PARAMS': CKA_EC_PARAMS, 'PRIME': CKA_PRIME}
rows = []
for o in session.findObjects([]):
    row = {}
    for n, t in names.items():
        try:
            v = session.getAttributeValue(o, [t], allAsBinary=True)[0]
        except PyKCS11Error:
            v = None
        row[n] = None if v is None else bytes(v).hex()
    rows.append(row)
print(json.dumps(rows))
`,
    );
    const rows: Array<Record<string, string | null>> = JSON.parse(out);
    const bool = (hex: string | null | undefined) => (hex === '01' ? true : hex === '00' ? false : hex);
    const num = (hex: string | null | undefined) => (hex ? Number(Buffer.from(hex, 'hex').readBigUInt64LE()) : undefined);
    const text = (hex: string | null | undefined) => (hex ? Buffer.from(hex, 'hex').toString('utf8') : '');
    // Session keys are not visible to another process.
    expect(rows.filter((r) => text(r.ID) === 'sess-1')).toHaveLength(0);
    for (const m of made) {
      const mine = rows.filter((r) => text(r.ID) === m.id);
      expect(mine, m.id).toHaveLength(2);
      const pub = mine.find((r) => num(r.CLASS) === 2)!;
      const priv = mine.find((r) => num(r.CLASS) === 3)!;
      for (const r of [pub, priv]) {
        expect(text(r.LABEL)).toBe(m.label);
        expect(r.ID).toBe(Buffer.from(m.id).toString('hex'));
        expect(bool(r.TOKEN)).toBe(true);
        expect(bool(r.LOCAL)).toBe(true);
        expect(bool(r.DERIVE)).toBe(false);
        expect(num(r.KEY_TYPE)).toBe(m.kind === 'EC' ? 3 : 1);
        expect(num(r.KEY_GEN_MECHANISM)).toBe(m.kind === 'EC' ? 0x1040 : 0x10);
      }
      expect(bool(pub.PRIVATE)).toBe(false);
      expect(bool(pub.VERIFY)).toBe(true);
      expect(bool(pub.ENCRYPT)).toBe(false);
      expect(bool(pub.WRAP)).toBe(false);
      expect(bool(pub.VERIFY_RECOVER)).toBe(false);
      expect(bool(priv.PRIVATE)).toBe(true);
      expect(bool(priv.SENSITIVE)).toBe(true);
      expect(bool(priv.SIGN)).toBe(true);
      expect(bool(priv.DECRYPT)).toBe(false);
      expect(bool(priv.UNWRAP)).toBe(false);
      expect(bool(priv.SIGN_RECOVER)).toBe(false);
      expect(bool(priv.EXTRACTABLE)).toBe(!m.nex);
      expect(bool(priv.NEVER_EXTRACTABLE)).toBe(m.nex);
      if (m.kind === 'EC') {
        const der = Buffer.from(pub.EC_PARAMS!, 'hex');
        expect(der[0]).toBe(0x06);
        expect(priv.EC_PARAMS).toBe(pub.EC_PARAMS);
        // OpenSSL names the OID (independently of kmu11's curve table's encoder).
        const parsed = execFileSync('openssl', ['asn1parse', '-inform', 'DER'], { input: der, encoding: 'utf8' });
        const curve = CURVES.find((c) => c.oid === m.curveOid)!;
        expect(parsed).toMatch(new RegExp(`OBJECT\\s+:${curve.names[0]}\\s*$`, 'm'));
      } else {
        expect(Buffer.from(pub.PRIME!, 'hex').length * 8).toBe(2048);
      }
    }
  });

  it('pairs sign and verify (p11tool --test-sign)', () => {
    // GnuTLS has no binary (sect*) curves: it checks the prime curves and DSA.
    for (const m of made.filter((x) => x.kind === 'DSA' || PRIME_CURVES.has(x.curveOid!))) {
      const r = spawnSync(
        'p11tool',
        ['--provider', token.module, '--login', '--test-sign', `pkcs11:token=${token.label};id=${encodeURIComponent(m.id).replace(/-/g, '%2D')};type=private`],
        { env: { ...token.env, GNUTLS_PIN: token.pin }, encoding: 'utf8' },
      );
      expect(r.status, m.id + r.stderr).toBe(0);
      expect(r.stdout + r.stderr, m.id).toMatch(/Verifying against public key in the token\.\.\. ok/);
    }
  });

  it('signs with pkcs11-tool and verifies with openssl against the exported public key', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kmu11-sig-'));
    const digest = join(dir, 'digest');
    writeFileSync(digest, createHash('sha256').update('kmu11 says hello').digest());
    // The public key as kmu11's exportPubKey writes it (every curve), and for P-256 also as
    // pkcs11-tool reads it from the token.
    const ecs = made.filter((x) => x.kind === 'EC');
    const json = (words: string[]) => {
      const r = kmu11(['--json', 'singlecmd', ...LOGIN, ...words], { env: h.env });
      expect(r.status, r.stderr).toBe(0);
      return r.stdout.trim().split('\n').slice(1).map((l) => JSON.parse(l).result);
    };
    const found = json(ecs.flatMap((m) => ['findKey', '-c', '2', '-id', m.id]));
    const exported = new Map<string, string>();
    const words: string[] = [];
    ecs.forEach((m, i) => {
      expect(found[i].handles, m.id).toHaveLength(1);
      exported.set(m.id, join(dir, `${m.id}.pem`));
      words.push('exportPubKey', '-k', String(found[i].handles[0]), '-out', exported.get(m.id)!);
    });
    json(words);
    for (const m of made.filter((x) => x.kind === 'EC')) {
      const hexId = Buffer.from(m.id).toString('hex');
      const sig = join(dir, `${m.id}.sig`);
      pkcs11Tool(token, ['--sign', '-m', 'ECDSA', '--id', hexId, '-i', digest, '-o', sig, '--signature-format', 'openssl']);
      const keys = [['PEM', exported.get(m.id)!]];
      if (NIST_CURVES.has(m.curveOid!)) {
        const der = join(dir, `${m.id}.der`);
        pkcs11Tool(token, ['--read-object', '--type', 'pubkey', '--id', hexId, '-o', der]);
        keys.push(['DER', der]);
      }
      for (const [form, key] of keys) {
        const v = execFileSync('openssl', ['pkeyutl', '-verify', '-pubin', '-keyform', form!, '-inkey', key!, '-in', digest, '-sigfile', sig], {
          encoding: 'utf8',
        });
        expect(v, `${m.id} ${form}`).toMatch(/Signature Verified Successfully/);
      }
    }
  });
});
