// What scripts written for real kmu parse: kmu 3.x's text by default (prompt, findKey), the
// pages' older text with --profile pages, blank lines, -out files read with tail, kmu's
// missing-flag lines, the -a 512 set and order, the setAttribute question in batch, one code
// table, -h first, singlecmd chains, and the default-password warning once.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Error2String } from '../src/commands/Error2String.js';
import { COMMANDS } from '../src/commands/index.js';
import { dumpOrder } from '../src/kmu/dumpOrder.js';
import { OBJ } from '../src/kmu/objAttr.js';
import { RETURN_CODES } from '../src/kmu/returnCodes.js';
import { LOGIN, kmu11, makeHome, pairHandles } from './helpers/cli.js';
import { openShell } from './helpers/shell.js';
import { normalize, pageBlocks } from './helpers/pages.js';

let h: ReturnType<typeof makeHome>;
let pub: number;
let priv: number;
beforeAll(() => {
  h = makeHome();
  const r = kmu11(['singlecmd', ...LOGIN, 'genECCKeyPair', '-i', '2', '-l', 'scripted', '-id', 'scr-1'], { env: h.env });
  expect(r.status, r.stderr).toBe(0);
  ({ pub, priv } = pairHandles(r.stdout));
});
afterAll(() => h.cleanup());

const batch = (lines: string[], args: string[] = []) => kmu11(args, { env: h.env, cwd: h.home, input: lines.join('\n') + '\n' });

describe('output profiles', () => {
  it('kmu 3.x by default: prompt "Command:  ", "Total number of keys present: N", "Handles of matching keys:<tab>…"', () => {
    const r = batch([LOGIN.join(' '), 'findKey -l scripted']);
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines).toContain('Command:  findKey -l scripted');
    expect(lines).toContain('Total number of keys present: 2');
    expect(lines).toContain(`Handles of matching keys:\t${Math.min(pub, priv)}, ${Math.max(pub, priv)}`);
    // What the script in the wild does: delete newlines, grep the line, cut at the tab.
    const handle = execFileSync('bash', ['-c', `tr -d '\\n' | grep -o 'Handles of matching keys:\\s*\\([0-9]*\\)' | cut -f 2`], { input: r.stdout, encoding: 'utf8' });
    expect(handle.trim()).toBe(String(Math.min(pub, priv)));
    expect(execFileSync('bash', ['-c', 'grep -cE "Total number of keys present: 2$"'], { input: r.stdout, encoding: 'utf8' }).trim()).toBe('1');
  });

  it('--profile pages (or KMU11_PROFILE, or "profile" in config.json) prints the pages\' older form', () => {
    const older = (r: ReturnType<typeof kmu11>) => {
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^Command: findKey -l scripted$/m);
      expect(r.stdout).toMatch(/^Total number of keys present 2$/m);
      expect(r.stdout).toMatch(new RegExp(`^ number of keys matched from start index 0::1\\n${Math.min(pub, priv)}, ${Math.max(pub, priv)}$`, 'm'));
    };
    older(batch([LOGIN.join(' '), 'findKey -l scripted'], ['--profile', 'pages']));
    older(kmu11([], { env: { ...h.env, KMU11_PROFILE: 'pages' }, input: `${LOGIN.join(' ')}\nfindKey -l scripted\n` }));
    const conf = join(h.home, '..', 'profile.json');
    writeFileSync(conf, JSON.stringify({ profile: 'pages' }));
    older(kmu11([], { env: { ...h.env, KMU11_CONFIG: conf }, input: `${LOGIN.join(' ')}\nfindKey -l scripted\n` }));
    // The option beats the config file.
    const r = kmu11(['--profile', 'kmu3'], { env: { ...h.env, KMU11_CONFIG: conf }, input: `${LOGIN.join(' ')}\nfindKey -l scripted\n` });
    expect(r.stdout).toMatch(/^Total number of keys present: 2$/m);
    writeFileSync(conf, JSON.stringify({ profile: 'kmu4' }));
    const bad = kmu11(['singlecmd', 'help'], { env: { ...h.env, KMU11_CONFIG: conf } });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/"profile" must be "kmu3" or "pages"/);
    expect(kmu11(['--profile', 'nope', 'singlecmd', 'help'], { env: h.env }).stderr).toMatch(/--profile takes kmu3 or pages/);
  });

  it('the shell on a terminal prompts "Command:  " and prints what batch prints, blank lines included', async () => {
    const commands = ['Error2String -r 0xdb', 'findKey -l scripted', 'getKeyInfo -k 999999', 'listECCCurveIds'];
    const b = batch([LOGIN.join(' '), ...commands]);
    const sections = b.stdout.split(/^Command: {2}/m).slice(2); // after the login's
    const sh = await openShell(h.env);
    await sh.send(LOGIN.join(' '));
    for (let i = 0; i < commands.length; i++) {
      const ours = (await sh.send(commands[i]!)).filter((l) => !/^(Error|Warning): /.test(l)); // stderr shares the terminal
      expect(ours.join('\n'), commands[i]).toBe(sections[i]!.split('\n').slice(1).join('\n'));
      // One command's output, one blank line, the next prompt: as the loginHSM page shows.
      // (the text before the prompt ends "…last line\n\n": split, a blank line and the prompt's empty start)
      expect(ours.slice(-2)).toEqual(['', '']);
      expect(ours[ours.length - 3]).not.toBe('');
    }
    expect(await sh.exit()).toBe(1); // getKeyInfo of an unknown handle failed
  });
});

describe('script-read files and lines', () => {
  it('getAttribute -a 3 -out: the value is the file\'s last line (tail -n 1), as the page\'s file', () => {
    const r = kmu11(['singlecmd', ...LOGIN, 'getAttribute', '-o', String(priv), '-a', '3', '-out', 'label.txt'], { env: h.env, cwd: h.home });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^Attributes dumped into label\.txt file$/m);
    expect(readFileSync(join(h.home, 'label.txt'), 'utf8')).toBe('OBJ_ATTR_LABEL\nscripted\n');
    expect(execFileSync('tail', ['-n', '1', join(h.home, 'label.txt')], { encoding: 'utf8' })).toBe('scripted\n');
    // The page's single-attribute file has the same shape.
    const page = pageBlocks('cloudhsm-docs/key_mgmt_util-getAttribute.md').find((b) => b.lines[0]?.includes('cat attribute.txt'))!;
    expect(page.lines.slice(1)).toEqual(['OBJ_ATTR_KEY_TYPE', '0x00000015']);
  });

  it('a missing required flag is kmu\'s "Error: <what> (-<flag>) is missing." on stdout, kmu11\'s reason on stderr, for every command', () => {
    const r = kmu11(['singlecmd', 'getAttribute', '-o', '5'], { env: h.env });
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('\n        Error: Attribute constant (-a) is missing.\n');
    expect(r.stderr).toBe('Error: getAttribute: -a <attribute constant> is required\n');
    const g = kmu11(['singlecmd', 'genECCKeyPair'], { env: h.env });
    expect(g.stdout.split('\n').filter(Boolean)).toEqual(['        Error: EC curve id (-i) is missing.', '        Error: Label (-l) is missing.']);
    const j = kmu11(['--json', 'singlecmd', 'deleteKey'], { env: h.env });
    expect(JSON.parse(j.stdout).error.missing).toEqual([{ flag: '-k', what: 'Key handle' }]);
    // Data-driven: every required flag of every registered command gets the line (commands added later too).
    for (const c of COMMANDS) {
      const required = c.flags.filter((x) => x.required);
      if (required.length === 0) continue;
      const m = kmu11(['singlecmd', c.name], { env: h.env });
      expect(m.status, c.name).toBe(1);
      expect(m.stdout.split('\n').filter(Boolean), c.name).toEqual(required.map((f) => expect.stringMatching(new RegExp(`^ {8}Error: [A-Z].* \\(${f.flag}\\) is missing\\.$`))));
    }
  });
});

describe('getAttribute -a 512: the set and order CloudHSM prints for the key type', () => {
  const names = (file: string) => readFileSync(join(h.home, file), 'utf8').split('\n').filter((l) => l.startsWith('OBJ_ATTR_'));
  const eccPage = () => {
    const b = pageBlocks('kmu-genECCKeyPair.md').find((x) => x.lines.some((l) => l.includes('cat attr_262177')))!;
    return b.lines.filter((l) => l.startsWith('OBJ_ATTR_'));
  };

  it('an EC private key: the genECCKeyPair page\'s 19, ending with MODULUS_BITS; its public key the same set', () => {
    for (const [handle, file] of [[priv, 'all_priv'], [pub, 'all_pub']] as const) {
      const r = kmu11(['singlecmd', ...LOGIN, 'getAttribute', '-o', String(handle), '-a', '512', '-out', file], { env: h.env, cwd: h.home });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/attr cnt 19$/m);
      expect(names(file)).toEqual(eccPage());
    }
  });

  it('a DSA key, and the table: the 17 every key has (the getAttribute page\'s AES dump); RSA the genRSAKeyPair page\'s 26', () => {
    const g = kmu11(['singlecmd', ...LOGIN, 'genDSAKeyPair', '-m', '2048', '-l', 'dsa-dump'], { env: h.env });
    expect(g.status, g.stderr).toBe(0);
    const r = kmu11(['singlecmd', ...LOGIN, 'getAttribute', '-o', String(pairHandles(g.stdout).priv), '-a', '512', '-out', 'all_dsa'], { env: h.env, cwd: h.home });
    expect(r.status, r.stderr).toBe(0);
    const aes = pageBlocks('cloudhsm-docs/key_mgmt_util-getAttribute.md')
      .find((b) => b.lines.some((l) => l.includes('aes256')))!
      .lines.filter((l) => l.startsWith('OBJ_ATTR_'));
    expect(names('all_dsa')).toEqual(aes);
    expect(dumpOrder(31).map((n) => `OBJ_ATTR_${n}`)).toEqual(aes);
    const rsa = pageBlocks('cloudhsm-docs/key_mgmt_util-genRSAKeyPair.md')
      .find((b) => b.lines.some((l) => l.includes('cat attr_2100177')))!
      .lines.filter((l) => l.startsWith('OBJ_ATTR_'));
    expect(dumpOrder(0).map((n) => `OBJ_ATTR_${n}`)).toEqual(rsa);
    for (const t of [0, 1, 3, 16, 21, 31]) for (const n of dumpOrder(t)) expect(OBJ[n], n).toBeTypeOf('number');
  });
});

describe('answers, codes, help and chains', () => {
  it('setAttribute without -v in batch: the question reads the next line, as typed at a terminal', () => {
    const r = batch([LOGIN.join(' '), `setAttribute -o ${priv} -a 1`, '1', `setAttribute -o ${priv} -a 1`, '0', 'findKey -l scripted']);
    const lines = r.stdout.split('\n');
    const asked = lines.filter((l) => l.includes('Enter the boolean attribute value (0 or 1):'));
    expect(asked.map((l) => l.trim())).toEqual(['Enter the boolean attribute value (0 or 1):1', 'Enter the boolean attribute value (0 or 1):0']);
    expect(r.stdout).toMatch(/Cfm3SetAttribute returned: 0x00 : HSM Return: SUCCESS/);
    expect(r.stdout).toMatch(/Cfm3SetAttribute returned: 0x06/); // 0 is refused: a token key stays one
    // The answers were not run as commands; the next command ran.
    expect(r.stderr).not.toMatch(/unknown command/);
    expect(r.stdout).toMatch(/^Total number of keys present: 2$/m);
    expect(r.status).toBe(1);
  });

  it('loginHSM -hpswd in batch reads the password from the next line, never echoed, as the page\'s answer block', () => {
    const r = kmu11(['--profile', 'pages'], { env: h.env, input: 'loginHSM -u CU -s crypto_user -hpswd\npassword\n' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).not.toMatch(/password\n|Command: password/);
    const block = pageBlocks('cloudhsm-docs/key_mgmt_util-loginHSM.md').find((b) => b.lines[0]?.startsWith('Enter password:'))!;
    const ours = r.stdout.split('\n').slice(1);
    expect(normalize(ours)).toEqual(normalize(block.lines.slice(0, block.lines.findIndex((l) => l.startsWith('Command:')))));
  });

  it('Error2String knows every code kmu11 prints, and an unknown code fails', async () => {
    for (const [code, text] of RETURN_CODES) {
      const r = await Error2String.run({}, { code });
      expect(r.code).toBe(0);
      expect(r.data.text).toBe(text);
    }
    const known = kmu11(['singlecmd', 'Error2String', '-r', '0x30000085'], { env: h.env });
    expect(known.status).toBe(0);
    expect(known.stdout).toBe('\n        Error Code 30000085 maps to HSM CLUSTER ERROR: Server in cluster is unavailable\n');
    const unknown = kmu11(['singlecmd', 'Error2String', '-r', '0x1234'], { env: h.env });
    expect(unknown.status).toBe(1);
    expect(unknown.stdout).toMatch(/Error Code 1234 maps to an unknown error code/);
  });

  it('-h wins over every other flag', () => {
    for (const words of [['genECCKeyPair', '-h', '-i', '99'], ['genECCKeyPair', '-i', '99', '-h'], ['getAttribute', '-o', 'x', '-h', '-zz']]) {
      const r = kmu11(['singlecmd', ...words], { env: h.env });
      expect(r.status, words.join(' ')).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^${words[0]} -h$`, 'm'));
      expect(r.stderr).toBe('');
    }
  });

  it('singlecmd runs as the same lines in batch: a failed command (typo or failure) reports and the chain goes on', () => {
    const typo = kmu11(['singlecmd', ...LOGIN, 'findKey', '-zz', 'getKeyInfo', '-k', String(priv)], { env: h.env });
    expect(typo.status).toBe(1);
    expect(typo.stdout).toMatch(/Cfm3LoginHSM returned: 0x00/);
    expect(typo.stderr).toMatch(/findKey has no flag -zz/);
    expect(typo.stdout).toMatch(/Cfm3GetKey returned: 0x00/);
    const batchTypo = batch([LOGIN.join(' '), 'findKey -zz', `getKeyInfo -k ${priv}`]);
    expect(batchTypo.status).toBe(1);
    expect(batchTypo.stdout).toMatch(/Cfm3GetKey returned: 0x00/);
    const denied = kmu11(['singlecmd', 'loginHSM', '-u', 'CU', '-s', 'crypto_user', '-p', 'wrong', 'genECCKeyPair', '-i', '2', '-l', 'never'], { env: h.env });
    expect(denied.status).toBe(1);
    expect(denied.stdout).toMatch(/Cfm3LoginHSM returned: 0xa5/);
    // Not logged in: the next command refuses, and makes nothing.
    expect(denied.stdout).toMatch(/Cfm3GenerateKeyPair returned: 0xa3/);
    expect(kmu11(['singlecmd', ...LOGIN, 'findKey', '-l', 'never'], { env: h.env }).stdout).toMatch(/Total number of keys present: 0$/m);
    // A word that is neither a flag nor a command is the error of the command it follows.
    const stray = kmu11(['singlecmd', 'Error2String', '-r', '0xdb', 'nonsense', 'Error2String', '-r', '0xa8'], { env: h.env });
    expect(stray.status).toBe(1);
    expect(stray.stdout).toMatch(/Error Code a8 maps to/);
    expect(stray.stdout).not.toMatch(/Error Code db maps to/);
  });

  it('the default-password warning shows once per home, not on every login', () => {
    const home = makeHome();
    try {
      const first = kmu11(['singlecmd', ...LOGIN], { env: home.env });
      expect(first.stderr).toMatch(/still has the default password/);
      for (let i = 0; i < 2; i++) expect(kmu11(['singlecmd', ...LOGIN], { env: home.env }).stderr).toBe('');
    } finally {
      home.cleanup();
    }
  });
});
