// kmu11's own commands beside kmu's language: `info` (where the token is, for other PKCS#11
// tools) and `passwd` (change an embedded-token user's password).
import { changePassword, resetPassword, resolveConfig, type BackendInfo, type ConfigOverrides } from '../backend/index.js';
import { KmuError, NoAnswer, UsageError } from '../kmu/errors.js';
import { ask, Interrupted, stdinLines, takeKeys, type KeyPress } from './prompt.js';
import type { CommandRunner } from '../kmu11.js';

function formatInfo(i: BackendInfo): string {
  const rows: Array<[string, string | number | undefined]> = [
    ['backend', i.backend],
    ['module', i.modulePath],
    ['library', `${i.library.description} ${i.library.version} (${i.library.manufacturerID}), Cryptoki ${i.library.cryptokiVersion}`],
    ['slot', `${i.slot.id} (${i.slot.description})`],
    ['token', i.token.label],
    ['token model', `${i.token.manufacturerID} ${i.token.model}`],
    ['token serial', i.token.serialNumber],
    ['home', i.home],
    ['softhsm2.conf', i.softhsmConf],
    ['user PIN file', i.userPinFile],
    ['SO PIN file', i.soPinFile],
  ];
  return rows
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${(k + ':').padEnd(15)}${v}`)
    .join('\n');
}

export async function runInfo(runner: CommandRunner, json: boolean): Promise<number> {
  const { backend } = await runner.connect();
  const info = await backend.info();
  process.stdout.write((json ? JSON.stringify(info) : formatInfo(info)) + '\n');
  return 0;
}

/**
 * Passwords from standard input: asked on a terminal (not echoed), else one a line. `short`:
 * the usage error when input ends first.
 */
export async function readSecrets(questions: string[], short = 'passwd needs the old password and the new one twice'): Promise<string[]> {
  const input = process.stdin.isTTY ? undefined : stdinLines();
  const lines = input?.next;
  const answers: string[] = [];
  // On a terminal, raw mode (no echo) for all three questions: keys typed between them are held.
  const pending: KeyPress[] = [];
  const hold = input ? undefined : takeKeys(process.stdin, (text, key) => void pending.push([text, key]));
  try {
    for (const question of questions) answers.push(await ask(question, { hidden: true, lines, pending }));
  } catch (e) {
    if (e instanceof NoAnswer) throw new UsageError(short);
    if (e instanceof Interrupted) throw new UsageError('interrupted; nothing changed');
    throw e;
  } finally {
    hold?.();
    input?.close();
  }
  return answers;
}

const PASSWD_USAGE =
  'usage: kmu11 passwd <user>                      (reads the old password, then the new one twice)\n' +
  '       kmu11 passwd --reset <user> [--co <name>]  (a CO, admin by default, sets a new password and unlocks the user;\n' +
  "                                                reads the CO's password, then the new one twice)";

export async function runPasswd(overrides: ConfigOverrides, args: string[]): Promise<number> {
  const reset = args[0] === '--reset';
  const rest = reset ? args.slice(1) : args;
  let officer = 'admin';
  const coAt = rest.indexOf('--co');
  if (reset && coAt >= 0) {
    officer = rest[coAt + 1] ?? '';
    rest.splice(coAt, 2);
  }
  if (rest.length !== 1 || rest[0]!.startsWith('-') || officer === '') throw new UsageError(PASSWD_USAGE);
  const user = rest[0]!;
  const config = resolveConfig(overrides);
  if (config.backend !== 'embedded') throw new UsageError("passwd changes the embedded token's users; other backends manage their own");
  const first = reset ? `Password of CO ${officer}: ` : 'Old password: ';
  const [given, newPassword, again] = await readSecrets([first, 'New password: ', 'New password again: ']);
  if (newPassword !== again) throw new UsageError('the new passwords differ');
  try {
    if (reset) await resetPassword(config.home, officer, given!, user, newPassword!);
    else await changePassword(config.home, user, given!, newPassword!);
  } catch (e) {
    if (!(e instanceof KmuError)) throw e;
    process.stderr.write(`Error: ${e.message}${e.detail ? ` (${e.detail})` : ''}\n`);
    return 1;
  }
  process.stdout.write(reset ? `Password of ${user} set by ${officer}; ${user} is unlocked\n` : `Password of ${user} changed\n`);
  return 0;
}
