// The command-line syntax: word splitting, singlecmd's command boundaries, shell completion,
// history, and --json's one object a command.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseLine, parseSinglecmd, splitWords } from '../src/commands/parse.js';
import { complete } from '../src/cli/shell.js';
import { withLock } from '../src/backend/lock.js';
import { LOGIN, kmu11, makeHome, startKmu11 } from './helpers/cli.js';
import { openShell } from './helpers/shell.js';

describe('syntax', () => {
  it('splits words with quotes and escapes', () => {
    expect(splitWords('genECCKeyPair -i 2 -l "my key" -id \'k 1\'')).toEqual(['genECCKeyPair', '-i', '2', '-l', 'my key', '-id', 'k 1']);
    expect(splitWords('a\\ b "c\\"d" \'\'')).toEqual(['a b', 'c"d', '']);
    expect(splitWords('   ')).toEqual([]);
  });

  it('reads a flag value that happens to be a command name as the value', () => {
    const [gen, find] = parseSinglecmd(['genECCKeyPair', '-i', '2', '-l', 'exit', '-id', 'help', 'findKey', '-l', 'exit']);
    expect(gen!.command.name).toBe('genECCKeyPair');
    expect(gen!.options).toMatchObject({ label: 'exit', id: 'help' });
    expect(find!.options).toEqual({ label: 'exit' });
  });

  it('reads -h anywhere as a request for the syntax, without other checks', () => {
    expect(parseLine('genECCKeyPair -h')!.help).toBe(true);
    expect(parseLine('genDSAKeyPair -l x -h')!.help).toBe(true);
  });

  it('accepts curve names as kmu ids', () => {
    for (const [name, id] of [['prime256v1', 2], ['secp384r1', 14], ['P-521', 15], ['NID_secp224r1', 13], ['sect571r1', 12]] as const)
      expect(parseLine(`genECCKeyPair -i ${name} -l x`)!.options.curve.id).toBe(id);
  });
});

describe('shell', () => {
  it('completes command names and each command\'s flags', () => {
    expect(complete('gen')[0].sort()).toEqual(['genDSAKeyPair', 'genECCKeyPair', 'genPBEKey', 'genRSAKeyPair', 'genSymKey']);
    expect(complete('genECCKeyPair -n')[0]).toEqual(['-nex']);
    expect(complete('genECCKeyPair -i 2 -')[0]).not.toContain('-i');
    expect(complete('findKey -s')[0]).toEqual(['-sess']);
    expect(complete('nosuch -')[0]).toEqual([]);
  });

  it('keeps history in $KMU11_HOME/history and answers -h with the syntax', async () => {
    const h = makeHome();
    try {
      const sh = await openShell(h.env);
      const syntax = await sh.send('genDSAKeyPair -h');
      expect(syntax.join('\n')).toContain('genDSAKeyPair -m <modulus length>');
      await sh.send('Error2String -r 0xc6');
      expect(await sh.exit()).toBe(0);
      expect(readFileSync(join(h.home, 'history'), 'utf8').split('\n')).toEqual(['genDSAKeyPair -h', 'Error2String -r 0xc6', 'exit', '']);
    } finally {
      h.cleanup();
    }
  });
});

describe('--json', () => {
  it('prints one object a command, with the code, its text, handles, warnings and the template sent', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kmu11-json-'));
    try {
      const env = { KMU11_HOME: join(dir, 'home') };
      const r = kmu11(['--json', 'singlecmd', ...LOGIN, 'genECCKeyPair', '-i', '2', '-l', 'j', '-id', 'j1', '-nex', 'genECCKeyPair', '-i', '2', '-l', 'j', '-id', 'j1'], { env });
      expect(r.status).toBe(1);
      const [login, gen, dup] = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
      expect(login).toMatchObject({ command: 'loginHSM', code: '0x00', text: 'HSM Return: SUCCESS' });
      expect(login.warnings[0]).toMatch(/default password/);
      expect(gen).toMatchObject({ command: 'genECCKeyPair', op: 'Cfm3GenerateKeyPair', code: '0x00', warnings: [] });
      expect(gen.result.publicKey).toBeGreaterThan(0);
      expect(gen.result.privateTemplate).toMatchObject({ CKA_EXTRACTABLE: false, CKA_ID: Buffer.from('j1').toString('hex'), CKA_LABEL: 'j' });
      expect(gen.result.publicTemplate).toMatchObject({ CKA_VERIFY: true, CKA_EC_PARAMS: '06082a8648ce3d030107' });
      expect(dup).toMatchObject({ command: 'genECCKeyPair', code: '0x07', text: 'HSM Error: Key ID already exists' });
      expect(dup.error.detail).toMatch(/already on the token/);
      expect(r.stderr).toBe('');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('offline commands', () => {
  it('Error2String reads the table; help lists what kmu11 has', () => {
    const h = makeHome();
    try {
      const r = kmu11(['singlecmd', 'Error2String', '-r', '0xdb', 'Error2String', '-r', '0xc6', 'help'], { env: h.env });
      expect(r.status).toBe(0);
      expect(r.stdout).toContain('        Error Code db maps to HSM Error: Invalid User Type.');
      expect(r.stdout).toContain('        Error Code c6 maps to HSM Error: Key Access is denied');
      expect(r.stdout).toMatch(/^   genECCKeyPair          Generates an ECC Key Pair$/m);
      expect(r.stdout).toMatch(/^   listECCCurveIds        List HSM supported ECC CurveIds$/m);
    } finally {
      h.cleanup();
    }
  });
});

describe('kmu11 passwd', () => {
  it('changes a password, and a CO unlocks a user locked after five wrong passwords', () => {
    const h = makeHome();
    try {
      const login = (pw: string) => kmu11(['singlecmd', 'loginHSM', '-u', 'CU', '-s', 'crypto_user', '-p', pw], { env: h.env });
      for (let i = 0; i < 5; i++) expect(login('wrong').stdout).toMatch(/returned: 0xa5/);
      expect(login('password').stdout).toMatch(/returned: 0xa6 : HSM Error: User account is locked/);
      const badCo = kmu11(['passwd', '--reset', 'crypto_user'], { env: h.env, input: 'not-it\nfresh-pass\nfresh-pass\n' });
      expect(badCo.status).toBe(1);
      expect(badCo.stderr).toMatch(/^Error: HSM Error: Invalid user name or password/);
      const reset = kmu11(['passwd', '--reset', 'crypto_user'], { env: h.env, input: 'password\nfresh-pass\nfresh-pass\n' });
      expect(reset.status, reset.stderr).toBe(0);
      expect(reset.stdout).toBe('Password of crypto_user set by admin; crypto_user is unlocked\n');
      expect(login('fresh-pass').stdout).toMatch(/returned: 0x00/);
      const own = kmu11(['passwd', 'crypto_user'], { env: h.env, input: 'fresh-pass\nsecond-pass\nsecond-pass\n' });
      expect(own.status, own.stderr).toBe(0);
      const r = login('second-pass');
      expect(r.stdout).toMatch(/returned: 0x00/);
      expect(r.stderr).not.toMatch(/default password/);
      const differ = kmu11(['passwd', 'crypto_user'], { env: h.env, input: 'second-pass\na-new-one\nanother-one\n' });
      expect(differ.status).toBe(2);
      expect(differ.stderr).toBe('kmu11: the new passwords differ\n');
    } finally {
      h.cleanup();
    }
  });
});

describe('C_Login on the embedded token', () => {
  // SoftHSM 2.6 rewrites token.object on every C_Login; two processes doing it at once leave
  // one of them with a broken view of the token (later calls fail with CKR_GENERAL_ERROR while
  // the login itself succeeded). kmu11 logs in under token.lock beside the token.
  it('waits for token.lock, so two kmu11 processes never log in at the same moment', async () => {
    const h = makeHome();
    try {
      expect(kmu11(['info'], { env: h.env }).status).toBe(0);
      const login = startKmu11(['singlecmd', ...LOGIN], { env: h.env });
      await withLock(join(h.home, 'token.lock'), async () => {
        await new Promise((r) => setTimeout(r, 1500));
        expect(login.exited()).toBe(false);
      });
      const r = await login.done;
      expect(r.status).toBe(0);
      expect(r.stdout).toMatch(/LoginHSM returned: 0x00/);
    } finally {
      h.cleanup();
    }
  });
});

describe('one -id, two processes at the same moment', () => {
  it('makes exactly one pair; the other gets 0x07 (5 rounds, EC and DSA)', async () => {
    const h = makeHome();
    try {
      expect(kmu11(['singlecmd', ...LOGIN], { env: h.env }).status).toBe(0);
      const run = (words: string[]) => startKmu11(['singlecmd', ...LOGIN, ...words], { env: h.env }).done;
      for (let round = 0; round < 5; round++) {
        const words = round % 2
          ? ['genDSAKeyPair', '-m', '2048', '-l', 'race', '-id', `race-${round}`]
          : ['genECCKeyPair', '-i', '2', '-l', 'race', '-id', `race-${round}`];
        const results = await Promise.all([run(words), run(words)]);
        expect(results.map((r) => r.status).sort()).toEqual([0, 1]);
        const loser = results.find((r) => r.status === 1)!;
        expect(loser.stdout, loser.stderr).toMatch(/returned: 0x07 : HSM Error: Key ID already exists/);
        const found = JSON.parse(kmu11(['--json', 'singlecmd', ...LOGIN, 'findKey', '-id', `race-${round}`], { env: h.env }).stdout.trim().split('\n')[1]!);
        expect(found.result.handles).toHaveLength(2);
      }
    } finally {
      h.cleanup();
    }
  });
});
