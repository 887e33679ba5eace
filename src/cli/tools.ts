// kmu11's own commands beside kmu's language: `info` (where the token is, for other PKCS#11
// tools) and `passwd` (change an embedded-token user's password).
import { createInterface } from 'node:readline';
import { resolveConfig, type ConfigOverrides } from '../backend/config.js';
import { changePassword } from '../backend/embedded.js';
import { UsageError } from '../kmu/errors.js';
import type { BackendInfo } from '../backend/backend.js';
import type { KmuSession } from '../kmu11.js';

export function formatInfo(i: BackendInfo): string {
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

export async function runInfo(session: KmuSession, json: boolean): Promise<number> {
  const { backend } = await session.connect();
  const info = await backend.info();
  process.stdout.write((json ? JSON.stringify(info) : formatInfo(info)) + '\n');
  return 0;
}

/** Lines from standard input: typed at a terminal (not echoed), or piped (old, new, new). */
async function readSecrets(count: number, questions: string[]): Promise<string[]> {
  const rl = createInterface({ input: process.stdin, output: process.stdin.isTTY ? process.stdout : undefined, terminal: !!process.stdin.isTTY });
  const answers: string[] = [];
  const lines = rl[Symbol.asyncIterator]();
  for (let i = 0; i < count; i++) {
    if (process.stdin.isTTY) process.stdout.write(questions[i]!);
    const next = await lines.next();
    if (next.done) break;
    answers.push(next.value);
    if (process.stdin.isTTY) process.stdout.write('\n');
  }
  rl.close();
  if (answers.length < count) throw new UsageError('passwd needs the old password and the new one twice');
  return answers;
}

export async function runPasswd(overrides: ConfigOverrides, args: string[]): Promise<number> {
  if (args.length !== 1) throw new UsageError('usage: kmu11 passwd <user>   (reads the old password, then the new one twice)');
  const config = resolveConfig(overrides);
  if (config.backend !== 'embedded') throw new UsageError('passwd changes the embedded token\'s users; other backends manage their own');
  const [oldPassword, newPassword, again] = await readSecrets(3, ['Old password: ', 'New password: ', 'New password again: ']);
  if (newPassword !== again) throw new UsageError('the new passwords differ');
  await changePassword(config.home, args[0]!, oldPassword!, newPassword!);
  process.stdout.write(`Password of ${args[0]} changed\n`);
  return 0;
}
