// PKCS#11 URIs (RFC 7512): every key kmu11 makes or lists has one (--json, -uri), other tools
// sign with it (p11tool --test-sign, OpenSSL's pkcs11 engine), and tokens are chosen by label
// or URI, never silently among two with one label.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kmu11, LOGIN, makeHome, pairHandles } from './helpers/cli.js';
import { makeToken, type TestToken } from './helpers/softhsm.js';

const ENGINE = ['/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so', '/usr/lib/aarch64-linux-gnu/engines-3/pkcs11.so'].find(existsSync);

let t: TestToken;
let h: ReturnType<typeof makeHome>;
let env: NodeJS.ProcessEnv;
const login = () => ['loginHSM', '-u', 'CU', '-s', 'any', '-p', t.userPin];

beforeAll(() => {
  t = makeToken('uri-token');
  h = makeHome();
  env = { ...h.env, SOFTHSM2_CONF: t.conf, KMU11_MODULE: t.module, KMU11_TOKEN: t.label };
});
afterAll(() => {
  t.cleanup();
  h.cleanup();
});

describe('key URIs', () => {
  it('printed with -uri and in --json; p11tool and OpenSSL sign with them, verified against exportPubKey', () => {
    const r = kmu11(['singlecmd', ...login(), 'genECCKeyPair', '-i', '2', '-l', 'uri key', '-id', 'u1', '-uri'], { env });
    expect(r.status, r.stderr).toBe(0);
    const priv = /private key URI: (pkcs11:\S+)/.exec(r.stdout)![1]!;
    expect(priv).toMatch(/^pkcs11:model=SoftHSM%20v2;manufacturer=SoftHSM%20project;serial=[0-9a-f]+;token=uri-token;id=%75%31;object=uri%20key;type=private$/);
    const { pub } = pairHandles(r.stdout);

    const j = kmu11(['--json', 'singlecmd', ...login(), 'findKey', '-l', 'uri key'], { env });
    const found = JSON.parse(j.stdout.trim().split('\n').pop()!).result;
    expect(found.uris).toHaveLength(2);
    // The URIs printed at generation (from its templates) are what the token holds (read by findKey).
    expect(found.uris[0]).toBe(/public key URI: (pkcs11:\S+)/.exec(r.stdout)![1]!);
    expect(found.uris[1]).toBe(priv);
    const text = kmu11(['singlecmd', ...login(), 'findKey', '-l', 'uri key'], { env });
    expect(text.stdout).not.toContain('pkcs11:'); // only with -uri

    const sign = spawnSync('p11tool', ['--provider', t.module, '--login', '--batch', '--test-sign', priv], {
      env: { ...process.env, SOFTHSM2_CONF: t.conf, GNUTLS_PIN: t.userPin },
      encoding: 'utf8',
    });
    expect(sign.stdout + sign.stderr).toMatch(/Signing using ECDSA-SHA256\.\.\. ok[\s\S]*Verifying against public key in the token\.\.\. ok/);

    expect(ENGINE, 'libengine-pkcs11-openssl (scripts/setup.sh --tests)').toBeDefined();
    const dir = join(h.home, '..');
    const cnf = join(dir, 'openssl.cnf');
    writeFileSync(
      cnf,
      ['openssl_conf = openssl_init', '[openssl_init]', 'engines = engine_section', '[engine_section]', 'pkcs11 = pkcs11_section', '[pkcs11_section]', 'engine_id = pkcs11', `dynamic_path = ${ENGINE}`, `MODULE_PATH = ${t.module}`, 'init = 0', ''].join('\n'),
    );
    const data = join(dir, 'digest');
    writeFileSync(data, Buffer.alloc(32, 7));
    execFileSync('openssl', ['pkeyutl', '-engine', 'pkcs11', '-keyform', 'engine', '-inkey', `${priv};pin-value=${t.userPin}`, '-sign', '-in', data, '-out', join(dir, 'sig')], {
      env: { ...process.env, SOFTHSM2_CONF: t.conf, OPENSSL_CONF: cnf },
      stdio: 'pipe',
    });
    const pem = join(dir, 'pub.pem');
    expect(kmu11(['singlecmd', ...login(), 'exportPubKey', '-k', String(pub), '-out', pem], { env }).status).toBe(0);
    const v = execFileSync('openssl', ['pkeyutl', '-verify', '-pubin', '-inkey', pem, '-in', data, '-sigfile', join(dir, 'sig')], { encoding: 'utf8' });
    expect(v).toMatch(/Signature Verified Successfully/);
  });
});

describe('choosing a token', () => {
  it('by URI (token and serial); two tokens with one label are an error, not a pick', () => {
    execFileSync('softhsm2-util', ['--init-token', '--free', '--label', 'twin', '--so-pin', '12345678', '--pin', '11112222'], { env: { ...process.env, SOFTHSM2_CONF: t.conf } });
    execFileSync('softhsm2-util', ['--init-token', '--free', '--label', 'twin', '--so-pin', '12345678', '--pin', '33334444'], { env: { ...process.env, SOFTHSM2_CONF: t.conf } });
    const twin = kmu11(['--token', 'twin', 'info'], { env });
    expect(twin.status).toBe(2);
    expect(twin.stderr).toMatch(/^kmu11: 2 tokens labelled "twin" in .*\("twin" serial \w+ slot \d+, "twin" serial \w+ slot \d+\); choose one with a PKCS#11 URI, e.g. --token 'pkcs11:serial=\w+'\n$/);
    const serial = /--token 'pkcs11:serial=(\w+)'/.exec(twin.stderr)![1]!;
    const byUri = kmu11(['--json', '--token', `pkcs11:token=twin;serial=${serial}`, 'info'], { env });
    expect(byUri.status, byUri.stderr).toBe(0);
    expect(JSON.parse(byUri.stdout).token).toMatchObject({ label: 'twin', serialNumber: serial });
    const bad = kmu11(['--token', 'pkcs11:token=twin;colour=red', 'info'], { env });
    expect(bad.stderr).toMatch(/unknown attribute "colour"/);
    const none = kmu11(['--token', 'pkcs11:serial=0000', 'info'], { env });
    expect(none.stderr).toMatch(/no token matches pkcs11:serial=0000 in .*\(tokens: /);
  });

  it('a mistyped label on the embedded token is an error listing its tokens, never a new empty token', () => {
    const home = makeHome();
    try {
      expect(kmu11(['singlecmd', ...LOGIN], { env: home.env }).status).toBe(0);
      const tokensDir = join(home.home, 'tokens');
      const before = readdirSync(tokensDir).length;
      const r = kmu11(['--token', 'kmu1l', 'singlecmd', ...LOGIN], { env: home.env });
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/^kmu11: no token labelled "kmu1l" in .* \(tokens: "kmu11"\); kmu11 makes its token only in an empty home\n$/);
      expect(readdirSync(tokensDir).length).toBe(before);
      const info = JSON.parse(kmu11(['--json', 'info'], { env: home.env }).stdout);
      const ok = kmu11(['--token', `pkcs11:token=kmu11;serial=${info.token.serialNumber}`, 'singlecmd', ...LOGIN], { env: home.env });
      expect(ok.status, ok.stderr).toBe(0);
      const other = kmu11(['--token', 'pkcs11:token=kmu11;serial=0000', 'singlecmd', ...LOGIN], { env: home.env });
      expect(other.status).toBe(2);
      expect(other.stderr).toMatch(/does not match pkcs11:token=kmu11;serial=0000/);
    } finally {
      home.cleanup();
    }
  });
});
