// Bad input of every kind: kmu's error text, a non-zero status, no stack trace, and the
// token's object count unchanged (counted by pkcs11-tool, which shares no code with kmu11).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOGIN, kmu11, makeHome } from './helpers/cli.js';
import { embeddedToken, objectCount, type TokenRef } from './helpers/oracle.js';

let h: ReturnType<typeof makeHome>;
let token: TokenRef;

beforeAll(() => {
  h = makeHome();
  // One key with -id dup, so that a second -id dup is a clash.
  const r = kmu11(['singlecmd', ...LOGIN, 'genECCKeyPair', '-i', '2', '-l', 'first', '-id', 'dup'], { env: h.env });
  expect(r.status, r.stderr).toBe(0);
  token = embeddedToken(h.env);
});
afterAll(() => h.cleanup());

const gen = (...flags: string[]) => ['singlecmd', ...LOGIN, 'genECCKeyPair', ...flags];
const dsa = (...flags: string[]) => ['singlecmd', ...LOGIN, 'genDSAKeyPair', ...flags];
const after = (...words: string[]) => ['singlecmd', ...LOGIN, ...words];

/** [case, argv or {input} for batch, expected stderr (regexp), expected stdout (regexp) or undefined]. */
const CASES: Array<[string, string[] | { input: Buffer | string }, RegExp, RegExp?]> = [
  ['unknown flag', gen('-i', '2', '-l', 'x', '-bogus'), /^Error: genECCKeyPair has no flag -bogus/],
  ['missing value at the end', gen('-i', '2', '-l'), /^Error: genECCKeyPair: -l needs a value/],
  ['curve id 0', gen('-i', '0', '-l', 'x'), /^Error: -i takes an EC curve id from 1 to 15/],
  ['curve id 16', gen('-i', '16', '-l', 'x'), /^Error: -i takes an EC curve id from 1 to 15/],
  ['curve id abc', gen('-i', 'abc', '-l', 'x'), /^Error: -i takes an EC curve id from 1 to 15.*'abc'/],
  ['curve id -1', gen('-i', '-1', '-l', 'x'), /^Error: -i takes an EC curve id/],
  ['no curve', gen('-l', 'x'), /^Error: genECCKeyPair: -i <EC curve id> is required/],
  ['no label', gen('-i', '2'), /^Error: genECCKeyPair: -l <label> is required/],
  ['DSA modulus 1024', dsa('-m', '1024', '-l', 'x'), /^Error: -m: the only valid modulus length is 2048/],
  ['DSA modulus abc', dsa('-m', 'abc', '-l', 'x'), /^Error: -m: the only valid modulus length is 2048/],
  ['DSA without -m', dsa('-l', 'x'), /^Error: genDSAKeyPair: -m <modulus length> is required/],
  ['m_value 9', gen('-i', '2', '-l', 'x', '-m_value', '9'), /^Error: -m_value must be from 0 to 8, not 9/],
  ['m_value -1', gen('-i', '2', '-l', 'x', '-m_value', '-1'), /^Error: -m_value takes a whole number from 0 to 8/],
  ['m_value without -u', gen('-i', '2', '-l', 'x', '-m_value', '2'), /^Error: -m_value 2 needs the key shared \(-u\) with at least 1 other user/],
  ['m_value above the users', dsa('-m', '2048', '-l', 'x', '-m_value', '3', '-u', '4'), /^Error: -m_value 3 needs the key shared/],
  ['-u with the own id', gen('-i', '2', '-l', 'x', '-u', '2'), /^Error: -u must not include the current user \(2\)/],
  ['-u not numbers', gen('-i', '2', '-l', 'x', '-u', 'abc'), /^Error: -u takes a comma-separated list of user ids/],
  ['-u twice the same', gen('-i', '2', '-l', 'x', '-u', '3,3'), /^Error: -u lists user 3 twice/],
  ['-timeout without -min_srv', gen('-i', '2', '-l', 'x', '-timeout', '5'), /^Error: -timeout is valid only together with -min_srv/],
  ['-min_srv 0', gen('-i', '2', '-l', 'x', '-min_srv', '0'), /^Error: -min_srv must be from 1 to 32, not 0/],
  ['-min_srv beyond one token', gen('-i', '2', '-l', 'x', '-min_srv', '2'), /^Error: -min_srv 2: the embedded backend spans 1 HSM; the key could never be synchronized to 2/, /returned: 0x0d/],
  ['-u naming no user', gen('-i', '2', '-l', 'x', '-u', '3'), /^Error: user 3 does not exist/, /returned: 0x02/],
  ['-u naming a CO', gen('-i', '2', '-l', 'x', '-u', '1'), /^Error: user 1 \(admin\) is CO; keys are shared with crypto users only/, /returned: 0xdb/],
  ['-m_value beyond the users', gen('-i', '2', '-l', 'x', '-m_value', '2'), /^Error: -m_value 2 needs the key shared \(-u\) with at least 1 other user/],
  ['-m_value 9', gen('-i', '2', '-l', 'x', '-m_value', '9'), /^Error: -m_value must be from 0 to 8/],
  ['shareKey without -share', after('shareKey', '-k', '262145', '-u', '3'), /^Error: shareKey: -share <1 to share \| 0 to unshare> is required/],
  ['shareKey -share 2', after('shareKey', '-k', '262145', '-u', '3', '-share', '2'), /^Error: -share takes 1 \(share\) or 0 \(unshare\)/],
  ['sign with an unknown mechanism', after('sign', '-f', '/etc/hostname', '-k', '262146', '-m', '42', '-out', '/tmp/x'), /^Error: -m takes a signing mechanism/],
  ['sign a missing file', after('sign', '-f', '/nonexistent/m', '-k', '262146', '-m', '17', '-out', '/tmp/x'), /^Error: cannot read file \/nonexistent\/m/, /returned: 0x09/],
  ['sign an EC key with an RSA mechanism', after('sign', '-f', '/etc/hostname', '-k', '262146', '-m', '1', '-out', '/tmp/x'), /^Error: mechanism 1 \(SHA256_RSA_PKCS\) needs an RSA key; key 262146 is EC/, /Cfm3Sign returned: 0x02/],
  ['sign with a public key', after('sign', '-f', '/etc/hostname', '-k', '262145', '-m', '17', '-out', '/tmp/x'), /^Error: key 262145 is not a private key/, /Cfm3Sign returned: 0x02/],
  ['verify with a private key', after('verify', '-f', '/etc/hostname', '-s', '/etc/hostname', '-k', '262146', '-m', '17'), /^Error: key 262146 is not a public key/, /Cfm3Verify returned: 0x02/],
  ['getToken for an unknown operation', after('getToken', '-k', '262146', '-o', 'export', '-out', '/tmp/x'), /^Error: -o takes one of sign, share, unshare, delete/],
  ['getToken on a key without quorum', after('getToken', '-k', '262146', '-o', 'sign', '-out', '/tmp/x'), /^Error: key 262146 is not quorum-controlled/, /returned: 0x02/],
  ['approveToken of a file that is no token', after('approveToken', '-f', '/etc/hostname', '-s', '/etc/hostname'), /^Error: the token file is not a kmu11 quorum token/],
  ['duplicate -id', gen('-i', '2', '-l', 'x', '-id', 'dup'), /^Error: a key with ID 'dup' is already on the token/, /Cfm3GenerateKeyPair returned: 0x07 : HSM Error: Key ID already exists/],
  ['duplicate -id for DSA', dsa('-m', '2048', '-l', 'x', '-id', 'dup'), /^Error: a key with ID 'dup' is already on the token/, /returned: 0x07/],
  ['no login', ['singlecmd', 'genECCKeyPair', '-i', '2', '-l', 'x'], /^Error: log in first/, /Cfm3GenerateKeyPair returned: 0xa3 : HSM Error: User is not logged in/],
  ['no login for findKey', ['singlecmd', 'findKey'], /^Error: log in first/, /Cfm3FindKey returned: 0xa3/],
  ['overlong label', gen('-i', '2', '-l', 'x'.repeat(200)), /^Error: -l: the label is 200 bytes long; at most 127/],
  ['overlong multibyte label', gen('-i', '2', '-l', 'é'.repeat(64)), /^Error: -l: the label is 128 bytes long/],
  ['overlong id', gen('-i', '2', '-l', 'x', '-id', 'i'.repeat(128)), /^Error: -id: the key ID is 128 bytes long/],
  ['empty label', gen('-i', '2', '-l', ''), /^Error: -l needs a non-empty label/],
  ['control character in label', gen('-i', '2', '-l', 'a\u0001b'), /^Error: -l: the label contains a control character/],
  ['label not UTF-8 (batch)', { input: Buffer.concat([Buffer.from(LOGIN.join(' ') + '\ngenECCKeyPair -i 2 -l bad'), Buffer.from([0xff, 0xfe]), Buffer.from('\n')]) }, /^Error: -l: the label is not valid UTF-8/],
  ['id not UTF-8 (batch)', { input: Buffer.concat([Buffer.from(LOGIN.join(' ') + '\ngenECCKeyPair -i 2 -l x -id '), Buffer.from([0xc3]), Buffer.from('\n')]) }, /^Error: -id: the key ID is not valid UTF-8/],
  ['flag given twice', gen('-i', '2', '-l', 'x', '-l', 'y'), /^Error: genECCKeyPair: -l is given twice/],
  ['switch with a value', gen('-i', '2', '-l', 'x', '-nex', '1'), /^Error: genECCKeyPair: unexpected '1'/],
  ['unknown command', after('genECCKeyPairs', '-i', '2'), /^Error: loginHSM: unexpected 'genECCKeyPairs': not a flag of loginHSM nor a command/],
  ['unknown command (batch)', { input: LOGIN.join(' ') + '\ngenECCKeyPairs -i 2 -l x\n' }, /^Error: unknown command 'genECCKeyPairs' \(type help for the list\)/],
  ['unterminated quote (batch)', { input: LOGIN.join(' ') + '\ngenECCKeyPair -i 2 -l "x\n' }, /^Error: unterminated " quote/],
  ['handle 0', after('getAttribute', '-o', '0', '-a', '512'), /^Error: -o takes a key handle \(a positive whole number\), not '0'/],
  ['handle abc', after('getAttribute', '-o', 'abc', '-a', '512'), /^Error: -o takes a key handle/],
  ['unknown handle', after('getAttribute', '-o', '999999', '-a', '512'), /^Error: /, /Cfm3GetAttribute returned: 0xa8 : HSM Error: Invalid object handle is passed to this operation/],
  ['unknown attribute', after('getAttribute', '-o', '1', '-a', '9999'), /^Error: -a takes an attribute constant from listAttributes, or 512/],
  ['findKey class 5', after('findKey', '-c', '5'), /^Error: -c takes a key class \(2, 3, 4\), not '5'/],
  ['findKey type 2', after('findKey', '-t', '2'), /^Error: -t takes a key type \(0, 1, 3, 16, 18, 21, 31\), not '2'/],
  ['findKey -sess 2', after('findKey', '-sess', '2'), /^Error: -sess takes a session flag \(0, 1\), not '2'/],
  ['findKey bad kcv', after('findKey', '-kcv', 'zz'), /^Error: -kcv takes a 3-byte key check value/],
  ['findKey missing modulus file', after('findKey', '-m', '/nonexistent/m.txt'), /^Error: cannot read \/nonexistent\/m.txt: ENOENT/, /Cfm3FindKey returned: 0x09/],
  ['Error2String without 0x', ['singlecmd', 'Error2String', '-r', 'db'], /^Error: -r takes a hexadecimal error code with 0x/],
  ['Error2String without -r', ['singlecmd', 'Error2String'], /^Error: Error2String: -r <response-code> is required/],
  ['login as CO', ['singlecmd', 'loginHSM', '-u', 'CO', '-s', 'admin', '-p', 'password'], /^$|Error:/, /Cfm3LoginHSM returned: 0xdb : HSM Error: Invalid User Type\./],
  ['wrong password', ['singlecmd', 'loginHSM', '-u', 'CU', '-s', 'crypto_user', '-p', 'wrong'], /^$|Error:/, /Cfm3LoginHSM returned: 0xa5/],
  ['unknown user', ['singlecmd', 'loginHSM', '-u', 'CU', '-s', 'nosuch', '-p', 'password'], /^$|Error:/, /Cfm3LoginHSM returned: 0xa5/],
  ['login without password', ['singlecmd', 'loginHSM', '-u', 'CU', '-s', 'crypto_user'], /^Error: loginHSM needs a password/],
  ['unwritable -out', after('getAttribute', '-o', '1', '-a', '512', '-out', '/nonexistent/dir/attr'), /^Error: /, /Cfm3GetAttribute returned: 0x(08|a8)/],
  ['listECCCurveIds with an argument', after('listECCCurveIds', 'x'), /^Error: listECCCurveIds: unexpected 'x'/],
  ['unknown global option', ['--bogus', 'singlecmd', 'help'], /^kmu11: unknown option --bogus/],
  ['unknown mode', ['frobnicate'], /^kmu11: unknown mode 'frobnicate'/],
  ['missing module', ['--module', '/nonexistent/libpkcs11.so', 'singlecmd', ...LOGIN], /^kmu11: .*\/nonexistent\/libpkcs11\.so/],
];

describe('bad input', () => {
  it.each(CASES)('%s', (_name, how, stderr, stdout) => {
    const before = objectCount(token);
    const r = Array.isArray(how) ? kmu11(how, { env: h.env }) : kmu11([], { env: h.env, input: how.input as string });
    expect(r.status, r.stdout + r.stderr).not.toBe(0);
    expect(r.stderr).not.toMatch(/^\s+at /m); // no stack trace
    const errLines = r.stderr.split('\n').filter((l) => l.startsWith('Error:') || l.startsWith('kmu11:'));
    expect(errLines.length, r.stderr).toBeLessThanOrEqual(1);
    expect(errLines[0] ?? '').toMatch(stderr);
    if (stdout) expect(r.stdout).toMatch(stdout);
    expect(objectCount(token)).toBe(before);
  });

  it('has at least 40 cases', () => expect(CASES.length).toBeGreaterThanOrEqual(40));
});
