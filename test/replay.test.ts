// Every `Command:` example of every key_mgmt_util page, replayed through batch, singlecmd and the
// interactive shell (a real terminal), in the pages profile, compared line by line with handles,
// key counts and node ids masked. Files an example reads come from test/fixtures/replay/<page>/
// or are made by kmu11 commands before it (PREP); keys a page uses but does not make get
// stand-ins. What is not compared is listed here with its reason: examples that need things this
// token cannot have are skipped, and page lines kmu11 consciously prints differently are in
// DIFFERS. No example may be pending (a command, input file or stand-in missing).
import { cpSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findCommand } from '../src/commands/index.js';
import { LOGIN, kmu11, makeHome } from './helpers/cli.js';
import { normalize, pageExamples, REFERENCE } from './helpers/pages.js';
import { MODES, maskCounts, newHandles, openDriver, type Mode } from './helpers/replay.js';

const PAGES = [
  ...readdirSync(REFERENCE).filter((f) => /^kmu-.*\.md$/.test(f)),
  ...readdirSync(join(REFERENCE, 'cloudhsm-docs'))
    .filter((f) => /^key_mgmt_util-.*\.md$/.test(f))
    .map((f) => `cloudhsm-docs/${f}`),
].sort();
const short = (page: string) => page.replace(/^cloudhsm-docs\/key_mgmt_util-/, '').replace(/\.md$/, '');

/** The pages' user and passwords are ours. */
const SUBST: Array<[RegExp, string]> = [
  [/-s example_user/, '-s crypto_user'],
  [/-p (<password>|aws)$/, '-p password'],
];

const USERS = "needs other crypto users (3, 4, 5, 6) to own or share keys: CloudHSM's user model (issue 8)";
const ATTEST = 'firmware attestation (-attest), which a SoftHSM token lacks: refused with 0x0d before anything is made';
/** `<page>: <command>` → why it is not replayed. */
const SKIP: Record<string, string> = {
  'kmu-genDSAKeyPair: genDSAKeyPair -m 2048 -l DSA -id DSA_shared_pair -nex -u 3,5,6': USERS,
  'kmu-genDSAKeyPair: genDSAKeyPair -m 2048 -l DSA-mV2 -m_value 2 -u 4,6 -attest': USERS,
  'kmu-genDSAKeyPair: getKeyInfo -k 17': USERS,
  'kmu-genECCKeyPair: genECCKeyPair -i 1 -l ecc1':
    "the FIPS refusal (0xb3) is the cloudhsm backend's; SoftHSM makes prime192v1 keys (pages.test.ts checks the refusal's text)",
  'Error2String: deleteKey -k 262162': USERS,
  'Error2String: getKeyInfo -k 262162': USERS,
  'deleteKey: deleteKey -k 262152': USERS,
  'findKey: findKey -t 31 -sess 0 -u 3': USERS,
  'getKeyInfo: getKeyInfo -k 9': USERS,
  'getKeyInfo: getKeyInfo -k 20': USERS,
  'getKeyInfo: findKey -u 4': USERS,
  'getKeyInfo: getKeyInfo -k 28': USERS,
  'getKeyInfo: genRSAKeyPair -m 2048 -e 195193 -l rsa_mofn -id rsa_mv2 -u 4 -m_value 2': USERS,
  'genRSAKeyPair: genRSAKeyPair -m 2048 -e 65537 -l rsa_mofn -id rsa_mv2 -u 4 -m_value 2': USERS,
  'genSymKey: genSymKey -t 16 -s 2048 -l generic-mV2 -m_value 2 -u 6 -attest': USERS,
  'genSymKey: genSymKey -t 21 -s 24 -l 3DES_shared -id IT-02 -u 4,5': USERS,
  'genSymKey: getKeyInfo -k 7': USERS,
  'genSymKey: getAttribute -o 7 -a 512 -attr_7':
    "dumps the shared 3DES key of the -u example (skipped), and the page's command lacks -out before attr_7 (kmu has no flag -attr_7)",
  'imSymKey: imSymKey -f 3des192.key -w 6 -t 21 -l temp -id test01 -sess -attest': ATTEST,
  'imSymKey: findKey -t 21 -l temp -id test01 -sess 1': 'lists the key of the -attest example before (skipped)',
  'getCert: getCert -f userRoot.crt -s 4':
    "the HSM's certificates (4: the cluster's user root) are CloudHSM's; the embedded token has none and getCert refuses with 0x04 before writing anything",
  'listUsers: listUsers':
    "lists the page's cluster users (a PCO, an AU, alice, bob, trent), not the embedded home's admin and crypto_user; users.test.ts prints the page's table from the page's users (and says why its 'found 4' is 5)",
  'loginHSM: loginHSM -u CU -s crypto_user -hpswd':
    "the page shows what follows in a separate block without its command; scripts.test.ts compares batch's answer with that block",
};
/** Replayed in batch and the shell only: the command reads session keys an earlier example made in the same process. */
const SAME_PROCESS: Record<string, string> = {
  'kmu-genDSAKeyPair: findKey -sess 1': 'the session pair of the example before ends with its singlecmd process',
  'setAttribute: findKey -sess 1': 'the session key of the example before ends with its singlecmd process',
  'exSymKey: exSymKey -k 8 -w 262168 -out aes256_H8.key': 'its wrapping key is the session key the example before made, gone with that process',
  'setAttribute: setAttribute -o 262154 -a 1': 'asks for the value; singlecmd has no input to answer from, and the key is a session key of another process',
};
/** Examples whose byte rows (`49 49 E2 D0 …`) depend on a stand-in key's value: compared as rows of 8 hex bytes. */
const STANDIN_BYTES: Record<string, string> = {
  'aesWrapUnwrap: aesWrapUnwrap -f 3DES.key -w 6 -m 1 -out 3DES.key.wrapped':
    "the wrapping key 6 is a stand-in, so the wrapped bytes differ from the page's; the unwrap example after it compares the page's key bytes exactly",
};
const HEX_ROW = /^([0-9A-F]{2} ){7}[0-9A-F]{2}$/;

/** Handles the pages use as unknown ones. */
const UNKNOWN = new Set(['252126']);
/** Stand-ins for keys a page uses but does not make: a public key where the command needs one, else a private key. */
const PUBLIC_STANDIN = new Set(['exportPubKey: 10']);
/** Commands whose -k key must be an RSA private key (kmu's fake-PEM handle files are RSA only; sign -m 1 is SHA256_RSA_PKCS). */
const RSA_STANDIN = /^(getCaviumPrivKey -k |sign .*-m 1\b)/;

/** Input files the pages' examples read, by page: test/fixtures/replay/<page>/ (its README says how they were made). */
const INPUTS = fileURLToPath(new URL('./fixtures/replay/', import.meta.url));
/**
 * Files that depend on the stand-in keys of a run (wrapped blobs, masked objects, signatures),
 * made with kmu11 commands before the example. In them, page handles name the example's
 * stand-ins, and $key / $pub / $priv the handles the command before made; `bind` makes a page
 * handle of the example name one of those.
 */
interface Prep {
  commands: string[];
  bind?: Record<string, '$key' | '$pub' | '$priv'>;
}
const wrapped3DES = (extra: string): Prep => ({
  commands: ['genSymKey -t 21 -s 24 -l replay-3DES', `wrapKey -k $key -w 6 -out 3DES.key -m 4${extra}`],
});
const PREP: Record<string, Prep> = {
  'unwrapKey: unWrapKey -f 3DES.key -w 6 -m 4': wrapped3DES(''),
  'unwrapKey: unWrapKey -f 3DES.key -w 6 -noheader -l unwrapped3DES -kc 4 -kt 21 -m 4': wrapped3DES(' -noheader'),
  'insertMaskedObject: insertMaskedObject -f maskedObj': { commands: ['genSymKey -t 31 -s 32 -l replay-masked', 'extractMaskedObject -o $key -out maskedObj'] },
  // The signature of the page's document by the pair whose public key the example verifies with.
  'verify: verify -f hardwareCert.crt -s hardwareCertSigned -k 262276 -m 1': {
    commands: ['genRSAKeyPair -m 2048 -e 65537 -l replay-verify', 'sign -f hardwareCert.crt -k $priv -m 1 -out hardwareCertSigned'],
    bind: { '262276': '$pub', 'replay-verify-private': '$priv' },
  },
  // A signature by the same key, of another document: it does not verify.
  'verify: verify -f hardwarecert.crt -s usercertsigned -k 262276 -m 1': { commands: ['sign -f userCert.crt -k replay-verify-private -m 1 -out usercertsigned'] },
};
/** The files an example reads: -f (getCert's -f is its output), -wk, findKey's -m. */
function inputFiles(command: string): string[] {
  const w = command.split(/\s+/);
  return w.flatMap((x, i) => {
    const flag = w[i - 1];
    const reads = (flag === '-f' && w[0] !== 'getCert') || flag === '-wk' || (flag === '-m' && w[0] === 'findKey');
    return reads ? [x] : [];
  });
}
const outFile = (command: string) => /(?:^|\s)-out (\S+)/.exec(command)?.[1];

interface Differ {
  page: string;
  command: string;
  line: string;
  ours?: string;
  reason: string;
}
const LOGIN_STATUS = "the getting-started page says Cluster Error Status after loginHSM and logoutHSM; the loginHSM page (the command's own) says Cluster Status";
const LIST_ATTRS = "the getAttribute page shows an older listAttributes; kmu11 prints the listAttributes page's own transcript";
const NEWER = "the genRSAKeyPair page shows a newer kmu's wording; kmu11 prints the form of the other pages (genECCKeyPair's generation and -a 512 dump)";
const DIFFERS: Differ[] = [
  { page: 'genRSAKeyPair', command: 'getAttribute -o 2100177 -a 512 -out attr_2100177', line: 'Attribute size: 801, count: 26', ours: 'got all attributes of size 801 attr cnt 26', reason: NEWER },
  { page: 'genRSAKeyPair', command: 'getAttribute -o 2100177 -a 512 -out attr_2100177', line: 'Written to: attr_2100177 file', ours: 'Attributes dumped into attr_2100177', reason: NEWER },
  { page: 'genRSAKeyPair', command: 'genRSAKeyPair -m 2048 -e 65537 -l rsa_test', line: 'Cluster Status:', ours: 'Cluster Error Status', reason: NEWER },
  ...['0', '1'].map((n) => ({
    page: 'genRSAKeyPair',
    command: 'genRSAKeyPair -m 2048 -e 65537 -l rsa_test',
    line: `Node id ${n} status: 0x00000000 : HSM Return: SUCCESS`,
    ours: 'Node id 0 and err state 0x00000000 : HSM Return: SUCCESS',
    reason: NEWER,
  })),
  { page: 'getting-started', command: 'loginHSM -u CU -s crypto_user -p password', line: 'Cluster Error Status', ours: 'Cluster Status', reason: LOGIN_STATUS },
  { page: 'getting-started', command: 'logoutHSM', line: 'Cluster Error Status', ours: 'Cluster Status', reason: LOGIN_STATUS },
  {
    page: 'Error2String',
    command: 'Error2String -r 0xa8',
    line: 'Error Code c6 maps to HSM Error: Key Access is denied',
    ours: 'Error Code a8 maps to HSM Error: Invalid object handle is passed to this operation',
    reason: "the page prints 0xc6's line under the command for 0xa8 (a copy slip)",
  },
  {
    page: 'getAttribute',
    command: 'getAttribute -o 6 -a 512 -out attr_6',
    line: 'Attributes dumped into attribute.txt file',
    ours: 'Attributes dumped into attr_6',
    reason: 'the page names another file than its -out; kmu11 names the file it wrote, worded as the genECCKeyPair page words a full dump',
  },
  {
    page: 'getAttribute',
    command: 'getAttribute -o 6 -a 512 -out attr_6',
    line: 'Cfm3GetAttribute returned: 0x00 : HSM Return: SUCCESS>',
    ours: 'Cfm3GetAttribute returned: 0x00 : HSM Return: SUCCESS',
    reason: "a stray '>' on the page",
  },
  {
    page: 'imSymKey',
    command: 'getAttribute -o 262180 -a 355 -out attributes/attr_262180',
    line: 'Attributes dumped into attributes/attr_262180_imported file',
    ours: 'Attributes dumped into attributes/attr_262180 file',
    reason: 'the page names another file than its -out; kmu11 names the file it wrote',
  },
  {
    page: 'imSymKey',
    command: 'getAttribute -o 262180 -a 355 -out attributes/attr_262180',
    line: 'Cfm3GetAttribute returned: 0x00 : HSM Return: SUCCESS',
    reason: "the getAttribute page (the command's own) and this page's KCV examples end a one-attribute dump to a file with the 'dumped into' line; kmu11 prints them all that way",
  },
  { page: 'getAttribute', command: 'listAttributes', line: 'Description', reason: LIST_ATTRS },
  { page: 'getAttribute', command: 'listAttributes', line: '===========', reason: LIST_ATTRS },
  {
    page: 'getAttribute',
    command: 'listAttributes',
    line: 'The following are all of the possible attribute values for getAttributes.',
    ours: 'Following are the possible attribute values for getAttributes:',
    reason: LIST_ATTRS,
  },
  { page: 'getAttribute', command: 'listAttributes', line: 'OBJ_ATTR_ID                     = 258', reason: LIST_ATTRS },
  { page: 'getAttribute', command: 'listAttributes', line: 'OBJ_ATTR_SENSITIVE              = 259', reason: LIST_ATTRS },
  {
    page: 'getKeyInfo',
    command: 'getKeyInfo -k 21',
    line: 'Owned by user 3',
    ours: 'Owned by user 2',
    reason: "the page's crypto user is user 3; the embedded token's first CU, crypto_user, is user 2",
  },
];

type Status = { kind: 'run' } | { kind: 'pending'; waitsFor: string } | { kind: 'skip'; reason: string } | { kind: 'syntax' };
interface Step {
  page: string;
  command: string;
  output: string[];
  status: Status;
  /** Handle values the command names (-k, -o, -w). */
  handles: string[];
}

const HANDLE_FLAGS = new Set(['-k', '-o', '-w']);
/** The wrapping key a command names (-w): its stand-in is an AES key. */
const wrapping = (command: string) => /(?:^|\s)-w (\d+)/.exec(command)?.[1];
function handleArgs(command: string): string[] {
  const w = command.split(/\s+/);
  return w.flatMap((x, i) => (HANDLE_FLAGS.has(w[i - 1] ?? '') && /^\d+$/.test(x) ? [x] : []));
}

function plan(page: string): Step[] {
  const steps: Step[] = [];
  const pendingMade = new Map<string, string>(); // page handle made by a pending example → its command
  let pendingSession: string | undefined;
  const written = new Set<string>(); // files an earlier example of the page wrote (-out)
  for (const e of pageExamples(page)) {
    let command = e.command.trim();
    for (const [re, to] of SUBST) command = command.replace(re, to);
    const name = command.split(/\s+/)[0] ?? '';
    const key = `${short(page)}: ${command}`;
    const handles = handleArgs(command);
    let status: Status = { kind: 'run' };
    if (command === '' || /<[^>]*>/.test(command)) status = { kind: 'syntax' };
    else if (SKIP[key]) status = { kind: 'skip', reason: SKIP[key]! };
    else if (!findCommand(name)) status = { kind: 'pending', waitsFor: name };
    else if (!PREP[key] && inputFiles(command).some((f) => !written.has(f) && !existsSync(join(INPUTS, short(page), f))))
      status = { kind: 'pending', waitsFor: `a fixture for its input file ${inputFiles(command).join(', ')}` };
    else if ((wrapping(command) || /^(exSymKey|wrapKey) -k /.test(command)) && !findCommand('genSymKey'))
      status = { kind: 'pending', waitsFor: 'genSymKey (its stand-in key is an AES key)' };
    else if (RSA_STANDIN.test(command) && !findCommand('genRSAKeyPair'))
      status = { kind: 'pending', waitsFor: 'genRSAKeyPair (its stand-in key is an RSA private key)' };
    else {
      const waits = handles.map((x) => pendingMade.get(x)).find(Boolean) ?? (/-sess|setAttribute/.test(command) ? pendingSession : undefined);
      if (waits) status = { kind: 'pending', waitsFor: waits };
    }
    if (status.kind === 'pending') {
      for (const x of newHandles(e.output)) pendingMade.set(x, status.waitsFor);
      if (/-sess/.test(command)) pendingSession = status.waitsFor;
    }
    const out = outFile(command);
    if (out && status.kind === 'run') written.add(out);
    steps.push({ page, command, output: e.output, status, handles });
  }
  return steps;
}

const PLANS = PAGES.map((p) => ({ page: p, steps: plan(p) }));

/** The page's lines as kmu11 is meant to print them: DIFFERS applied. */
function expectedLines(step: Step): string[] {
  const out: string[] = [];
  // A page's block may go on with a shell command ("$  cat attr_14_kcv"): not kmu's output.
  const end = step.output.findIndex((l) => /^\s*\$\s/.test(l));
  for (const line of end < 0 ? step.output : step.output.slice(0, end)) {
    const d = DIFFERS.find((x) => x.page === short(step.page) && x.command === step.command && x.line === line.trim());
    if (!d) out.push(line);
    else {
      if (d.ours !== undefined) out.push(d.ours);
    }
  }
  return out;
}

const compared = (lines: string[]) =>
  normalize(maskCounts(lines)).map((l) => (/^(H|\d+)(, (H|\d+))*$/.test(l) ? 'HANDLES' : l));

/** help lists the commands kmu11 has: its lines are the page's, in order, and every page line of a registered command is there. */
function expectHelp(ours: string[], page: string[]) {
  const p = normalize(page);
  const o = normalize(ours);
  let at = 0;
  for (const line of o) {
    const i = p.indexOf(line, at);
    expect(i, `help line '${line}' not on the page (in order)`).toBeGreaterThanOrEqual(0);
    at = i + 1;
  }
  for (const line of p) {
    const name = line.split(/\s+/)[0]!;
    if (/\S\s{2,}\S/.test(line) && findCommand(name)) expect(o, `help lacks ${name}`).toContain(line);
  }
}

/**
 * Each mode has its own token: the pages import the same key files (imSymKey), and two keys
 * nothing tells apart are refused as ambiguous by the handle store (backend/handles/store.ts).
 */
const homes = new Map<Mode, ReturnType<typeof makeHome>>();
/** `<mode> <page> <page handle>` → our stand-in key (each mode and page has its own: examples delete them). */
const standins = new Map<string, string>();

beforeAll(() => {
  // Per mode, one singlecmd makes every stand-in pair and one every stand-in AES key.
  const needs: Array<{ page: string; handle: string; pub: boolean; aes: boolean; rsa: boolean }> = [];
  for (const { page, steps } of PLANS) {
    const made = new Set<string>();
    for (const s of steps) {
      if (s.status.kind === 'run')
        for (const x of s.handles)
          if (!made.has(x) && !UNKNOWN.has(x) && !PREP[`${short(page)}: ${s.command}`]?.bind?.[x] && !needs.some((n) => n.page === page && n.handle === x))
            needs.push({ page, handle: x, pub: PUBLIC_STANDIN.has(`${short(page)}: ${x}`), aes: wrapping(s.command) === x || /^(exSymKey|wrapKey) -k /.test(s.command), rsa: RSA_STANDIN.test(s.command) });
      newHandles(s.output).forEach((x) => made.add(x));
    }
  }
  const pairNeeds = needs.filter((n) => !n.aes);
  const aesNeeds = needs.filter((n) => n.aes);
  for (const mode of MODES) {
    const h = makeHome();
    h.env.KMU11_PROFILE = 'pages';
    homes.set(mode, h);
    const words = [...LOGIN, 'genECCKeyPair', '-i', '2', '-l', 'replay-base'];
    for (const n of pairNeeds)
      words.push(...(n.rsa ? ['genRSAKeyPair', '-m', '2048', '-e', '65537'] : ['genECCKeyPair', '-i', '2']), '-l', `standin-${n.handle}`);
    const r = kmu11(['singlecmd', ...words], { env: h.env });
    expect(r.status, r.stderr).toBe(0);
    const pairs = [...r.stdout.matchAll(/public key handle: (\d+)\s+private key handle: (\d+)/g)].slice(1);
    expect(pairs).toHaveLength(pairNeeds.length);
    pairNeeds.forEach((n, i) => standins.set(`${mode} ${n.page} ${n.handle}`, n.pub ? pairs[i]![1]! : pairs[i]![2]!));
    const a = kmu11(['singlecmd', ...LOGIN, ...aesNeeds.flatMap((n) => ['genSymKey', '-t', '31', '-s', '32', '-l', `standin-${n.handle}`])], { env: h.env });
    expect(a.status, a.stderr).toBe(0);
    const keys = [...a.stdout.matchAll(/Key Handle: (\d+)/g)];
    expect(keys).toHaveLength(aesNeeds.length);
    aesNeeds.forEach((n, i) => standins.set(`${mode} ${n.page} ${n.handle}`, keys[i]![1]!));
  }
}, 300_000);
afterAll(() => homes.forEach((h) => h.cleanup()));

describe.each(MODES)('every page example through %s', (mode) => {
  for (const { page, steps } of PLANS) {
    const runnable = steps.filter((s) => s.status.kind === 'run' && !(mode === 'singlecmd' && SAME_PROCESS[`${short(page)}: ${s.command}`]));
    if (runnable.length === 0) continue;
    it(`${short(page)}: ${runnable.map((s) => s.command).join(' | ')}`, async () => {
      const h = homes.get(mode)!;
      const cwd = join(h.home, '..', `${mode}-${short(page)}`);
      mkdirSync(cwd, { recursive: true });
      const map = new Map([...standins].flatMap(([k, v]) => (k.startsWith(`${mode} ${page} `) ? [[k.split(' ').pop()!, v]] : [])));
      if (existsSync(join(INPUTS, short(page)))) cpSync(join(INPUTS, short(page)), cwd, { recursive: true });
      const login = !steps.some((s) => s.command.startsWith('loginHSM') && s.status.kind === 'run');
      const driver = await openDriver(mode, h.env, cwd, login);
      try {
        const subst = (line: string) =>
          line
            .split(' ')
            .map((w, i, all) => (HANDLE_FLAGS.has(all[i - 1] ?? '') && map.has(w) ? map.get(w)! : w))
            .join(' ');
        for (const s of runnable) {
          const prep = PREP[`${short(page)}: ${s.command}`];
          if (prep) {
            const made: Record<string, string> = {};
            for (const c of prep.commands) {
              const line = subst(c).replace(/\$(key|pub|priv)\b/g, (_, k: string) => made[k]!);
              const out = await driver.run(line);
              expect(out.join('\n'), `${mode} prep: ${line}`).toMatch(/returned: 0x00 |written to file|successful/);
              const [a, b] = newHandles(out);
              if (b) Object.assign(made, { pub: a, priv: b });
              else if (a) made.key = a;
            }
            for (const [x, k] of Object.entries(prep.bind ?? {})) map.set(x, made[k.slice(1)]!);
          }
          const command = subst(s.command);
          const asks = s.output.find((l) => l.includes('Enter the boolean attribute value (0 or 1):'));
          const answer = asks && !/ -v /.test(command) ? { question: 'Enter the boolean attribute value (0 or 1):', value: asks.split(':').pop()!.trim() } : undefined;
          const ours = await driver.run(command, answer);
          const theirs = newHandles(s.output);
          newHandles(ours).forEach((x, i) => theirs[i] && map.set(theirs[i]!, x));
          const label = `${mode} ${short(page)}: ${command}\n${ours.join('\n')}`;
          if (expectedLines(s).every((l) => l.trim() === '')) {
            // The page shows no output (a syntax example): it must run, and succeed.
            for (const l of ours) expect(l, label).not.toMatch(/returned: 0x(?!00 )|^\s*Error:/);
          } else if (s.command === 'help') expectHelp(ours, s.output);
          else if (STANDIN_BYTES[`${short(page)}: ${s.command}`]) {
            const rows = (ls: string[]) => compared(ls).map((l) => (HEX_ROW.test(l) ? 'HEX ROW' : l));
            expect(rows(ours), label).toEqual(rows(expectedLines(s)));
          } else expect(compared(ours), label).toEqual(compared(expectedLines(s)));
        }
      } finally {
        await driver.close();
      }
    });
  }
});

describe('pending examples', () => {
  it('none: every example replays or is skipped with its reason (a new page example needs its command, input file or stand-in first)', () => {
    const pending = PLANS.flatMap(({ page, steps }) =>
      steps.flatMap((s) => (s.status.kind === 'pending' ? [`${short(page)}: ${s.command} (waits for ${s.status.waitsFor})`] : [])),
    );
    expect(pending).toEqual([]);
  });
});

describe('the replay lists', () => {
  it('every skip, same-process and differ entry names an example on the pages, and each differ line is on its page', () => {
    const all = new Set(PLANS.flatMap((p) => p.steps.map((s) => `${short(p.page)}: ${s.command}`)));
    for (const key of [...Object.keys(SKIP), ...Object.keys(SAME_PROCESS), ...Object.keys(PREP), ...Object.keys(STANDIN_BYTES)]) expect(all, key).toContain(key);
    for (const d of DIFFERS) {
      const step = PLANS.flatMap((p) => p.steps).find((s) => short(s.page) === d.page && s.command === d.command);
      expect(step, `${d.page}: ${d.command}`).toBeDefined();
      expect(step!.output.map((l) => l.trim()), d.line).toContain(d.line);
    }
  });
});
