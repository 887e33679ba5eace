import { writeFileSync } from 'node:fs';
import { CKA, CKO } from '../p11/index.js';
import { KmuError, UsageError } from '../kmu/errors.js';
import { RC } from '../kmu/returnCodes.js';
import * as v from '../kmu/values.js';
import { wrapMechanism } from '../kmu/wrapMechanisms.js';
import { ok, type Command } from './types.js';
import { requireLogin, toKmuError } from './lib/context.js';
import { requireOwner } from './lib/ownership.js';
import { hostUnwrap, readAesKeyFile, requireAes, resolveKey, wrapWith, type ResolvedKey } from './lib/transfer.js';

/** -m: the pages of exSymKey, exportPrivateKey and imSymKey allow only 4 (NIST_AES_WRAP). */
export function onlyMechanism4(text: string, flag: string): number {
  if (text !== '4') throw new UsageError(`${flag}: the only valid wrapping mechanism is 4 (NIST_AES_WRAP), not '${text}'`);
  return 4;
}

/**
 * Wrap `key` under the token key `-w` with mechanism 4, then unwrap the result on the host side
 * (Cfm3UnWrapHostKey) with the same token key or the -wk file's key: the plaintext.
 */
export async function exportPlaintext(ctx: Parameters<typeof requireLogin>[0], key: ResolvedKey, wrappingHandle: number, wkFile?: string): Promise<Buffer> {
  const fileKey = wkFile !== undefined ? readAesKeyFile(wkFile) : undefined;
  requireOwner(ctx, key.handle, await ctx.handles.meta(key.handle));
  if (key.view.get(CKA.EXTRACTABLE) === false)
    throw new KmuError(RC.POLICY_VIOLATION, { detail: `key ${key.handle} is not extractable (OBJ_ATTR_EXTRACTABLE 0)` });
  const wrapping = await resolveKey(ctx, wrappingHandle);
  requireAes(wrapping);
  const blob = await wrapWith(ctx, wrapMechanism(4)!, wrapping.object, key.object);
  return hostUnwrap(ctx, wrapping.object, blob, fileKey);
}

export function writeOut(file: string, data: Buffer | string, mode = 0o600): void {
  try {
    writeFileSync(file, data, { mode });
  } catch (e) {
    throw new KmuError(RC.FILE_WRITE, { detail: `cannot write ${file}: ${(e as NodeJS.ErrnoException).code ?? e}` });
  }
}

export const exSymKey: Command<{ key: number; wrapping: number; out: string; mechanism?: number; wk?: string }, { handle: number; file: string; externalKey: boolean; length: number }> = {
  name: 'exSymKey',
  description: 'Exports a Symmetric key',
  op: 'Cfm3WrapKey',
  needsLogin: true,
  syntax: `exSymKey -h

exSymKey -k <key-to-export>
         -w <wrapping-key>
         -out <key-file>
         [-m 4]
         [-wk <unwrapping-key-file> ]`,
  flags: [
    { flag: '-k', key: 'key', parse: v.handle, required: true, metavar: '<key-to-export>' },
    { flag: '-w', key: 'wrapping', parse: v.handle, required: true, metavar: '<wrapping-key>' },
    { flag: '-out', key: 'out', parse: v.text('file path'), required: true, metavar: '<key-file>' },
    { flag: '-m', key: 'mechanism', parse: onlyMechanism4, metavar: '4' },
    { flag: '-wk', key: 'wk', parse: v.text('file path'), metavar: '<unwrapping-key-file>' },
  ],
  async run(ctx, o) {
    requireLogin(ctx);
    let plain: Buffer;
    try {
      const key = await resolveKey(ctx, o.key);
      if (key.view.cls !== CKO.SECRET_KEY)
        throw new KmuError(RC.INVALID_INPUT, { detail: `key ${o.key} is not a symmetric key; exSymKey exports those (private keys: exportPrivateKey)` });
      plain = await exportPlaintext(ctx, key, o.wrapping, o.wk);
    } catch (e) {
      throw toKmuError(e);
    }
    writeOut(o.out, plain);
    return ok(exSymKey, { handle: o.key, file: o.out, externalKey: o.wk !== undefined, length: plain.length });
  },
};
