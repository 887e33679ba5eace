import { CKO } from '../p11/index.js';
import { KmuError } from '../kmu/errors.js';
import { RC } from '../kmu/returnCodes.js';
import * as v from '../kmu/values.js';
import { ok, type Command } from './types.js';
import { exportPlaintext, resolveKey } from './lib/transfer.js';
import { onlyMechanism4 } from './lib/transferFlags.js';
import { writeOut } from './lib/files.js';

/** PKCS#8 DER as PEM ("BEGIN PRIVATE KEY"), 64 columns. */
function pkcs8Pem(der: Buffer): string {
  const b64 = der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN PRIVATE KEY-----\n${b64}\n-----END PRIVATE KEY-----\n`;
}

export const exportPrivateKey: Command<{ key: number; wrapping: number; out: string; mechanism?: number; wk?: string }, { handle: number; file: string; externalKey: boolean }> = {
  name: 'exportPrivateKey',
  description: 'Exports RSA/DSA/EC private key',
  op: 'Cfm3WrapKey',
  needsLogin: true,
  syntax: `exportPrivateKey -h

exportPrivateKey -k <private-key-handle>
                 -w <wrapping-key-handle>
                 -out <key-file>
                 [-m <wrapping-mechanism>]
                 [-wk <wrapping-key-file>]`,
  flags: [
    { flag: '-k', key: 'key', parse: v.handle, required: true, metavar: '<private-key-handle>' },
    { flag: '-w', key: 'wrapping', parse: v.handle, required: true, metavar: '<wrapping-key-handle>' },
    { flag: '-out', key: 'out', parse: v.text('file path'), required: true, metavar: '<key-file>' },
    { flag: '-m', key: 'mechanism', parse: onlyMechanism4, metavar: '<wrapping-mechanism>' },
    { flag: '-wk', key: 'wk', parse: v.text('file path'), metavar: '<wrapping-key-file>' },
  ],
  async run(ctx, o) {
    const key = await resolveKey(ctx, o.key, 'export');
    if (key.view.cls !== CKO.PRIVATE_KEY)
      throw new KmuError(RC.INVALID_INPUT, { detail: `key ${o.key} is not a private key; exportPrivateKey exports those` });
    const der = await exportPlaintext(ctx, key, o.wrapping, o.wk);
    writeOut(o.out, pkcs8Pem(der));
    return ok(exportPrivateKey, { handle: o.key, file: o.out, externalKey: o.wk !== undefined });
  },
};
