// Independent views of a token: Debian's pkcs11-tool, p11tool, pkcs11-dump, PyKCS11 and
// openssl, pointed at the token kmu11 uses (found through `kmu11 --json info`).
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { kmu11 } from './cli.js';

export interface TokenRef {
  module: string;
  conf: string;
  pin: string;
  label: string;
  env: NodeJS.ProcessEnv;
}

export function embeddedToken(env: NodeJS.ProcessEnv): TokenRef {
  const r = kmu11(['--json', 'info'], { env });
  if (r.status !== 0) throw new Error(`kmu11 info failed: ${r.stderr}`);
  const info = JSON.parse(r.stdout);
  return {
    module: info.modulePath,
    conf: info.softhsmConf,
    pin: readFileSync(info.userPinFile, 'utf8').trim(),
    label: info.token.label,
    env: { ...process.env, SOFTHSM2_CONF: info.softhsmConf },
  };
}

export function pkcs11Tool(t: TokenRef, args: string[]): string {
  return execFileSync('pkcs11-tool', ['--module', t.module, '--token-label', t.label, '--login', '--pin', t.pin, ...args], {
    env: t.env,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Every object on the token (token objects: another process sees no session objects). */
export function objectCount(t: TokenRef): number {
  const out = pkcs11Tool(t, ['--list-objects']);
  return (out.match(/^(Public Key|Private Key|Secret Key|Certificate|Data) [Oo]bject/gm) ?? []).length;
}

/**
 * Key objects only, as pkcs11-tool lists them. A process killed while SoftHSM is creating an
 * object leaves an object file with no attributes, which pkcs11-tool shows as a "Data object"
 * (CKA_CLASS unreadable, taken as 0): not a key, and not something findKey lists.
 */
export function keyCount(t: TokenRef): number {
  const out = pkcs11Tool(t, ['--list-objects']);
  return (out.match(/^(Public Key|Private Key|Secret Key) Object/gm) ?? []).length;
}

/** PyKCS11 (Debian's, for the system interpreter): runs a script with the token in scope. */
export function pykcs11(t: TokenRef, body: string): string {
  const script = `
import sys, json, PyKCS11
from PyKCS11 import *
lib = PyKCS11Lib(); lib.load(${JSON.stringify(t.module)})
slot = [s for s in lib.getSlotList(tokenPresent=True) if lib.getTokenInfo(s).label.strip() == ${JSON.stringify(t.label)}][0]
session = lib.openSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION)
session.login(${JSON.stringify(t.pin)})
${body}
`;
  const r = spawnSync('/usr/bin/python3', ['-c', script], { env: t.env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`PyKCS11 script failed: ${r.stderr}`);
  return r.stdout;
}

/** The kinds of token objects whose CKA_ID is `id`, from pkcs11-tool's listing. */
export function objectsWithId(t: TokenRef, id: string): string[] {
  const hex = Buffer.from(id).toString('hex');
  const blocks = pkcs11Tool(t, ['--list-objects']).split(/\n(?=\S)/);
  return blocks
    .filter((b) => new RegExp(`^\\s+ID:\\s+${hex}$`, 'm').test(b))
    .map((b) => b.split(';')[0]!.trim());
}
