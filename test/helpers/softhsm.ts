// A real SoftHSMv2 token in a temp directory, made with Debian's softhsm2-util
// (an oracle that shares no code with kmu11). One per test file.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const SOFTHSM_CANDIDATES = [
  '/usr/lib/softhsm/libsofthsm2.so',
  '/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so',
  '/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so',
  '/usr/local/lib/softhsm/libsofthsm2.so',
];

export function softhsmModule(): string {
  const found = SOFTHSM_CANDIDATES.find((p) => existsSync(p));
  if (!found) throw new Error('libsofthsm2.so not found: apt-get install softhsm2');
  return found;
}

/** A shared library that is surely there and is no PKCS#11 module: the C library this process runs on. */
export function notPkcs11Library(): string {
  const libc = /\/\S*\/libc\.so\.6$/m.exec(readFileSync('/proc/self/maps', 'utf8'))?.[0];
  if (!libc) throw new Error('no libc.so.6 in /proc/self/maps (the tests need glibc Linux)');
  return libc;
}

export interface TestToken {
  dir: string;
  conf: string;
  module: string;
  label: string;
  soPin: string;
  userPin: string;
  /** Environment for child processes that should see this token. */
  env: NodeJS.ProcessEnv;
  cleanup(): void;
}

export function makeToken(label = 'kmu11-test', opts: { setProcessEnv?: boolean } = {}): TestToken {
  const dir = mkdtempSync(join(tmpdir(), 'kmu11-token-'));
  const tokens = join(dir, 'tokens');
  mkdirSync(tokens, { mode: 0o700 });
  const conf = join(dir, 'softhsm2.conf');
  writeFileSync(
    conf,
    [
      `directories.tokendir = ${tokens}`,
      'objectstore.backend = file',
      'log.level = ERROR',
      'slots.removable = false',
      'slots.mechanisms = ALL',
      '',
    ].join('\n'),
  );
  const soPin = '12345678';
  const userPin = '87654321';
  const env = { ...process.env, SOFTHSM2_CONF: conf };
  execFileSync(
    'softhsm2-util',
    ['--init-token', '--free', '--label', label, '--so-pin', soPin, '--pin', userPin],
    { env, stdio: 'pipe' },
  );
  if (opts.setProcessEnv !== false) process.env.SOFTHSM2_CONF = conf;
  return {
    dir,
    conf,
    module: softhsmModule(),
    label,
    soPin,
    userPin,
    env,
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
