import { CKA, CKO, type Template } from '../p11/index.js';
import { UsageError } from '../kmu/errors.js';
import * as v from '../kmu/values.js';
import { decide } from '../kmu/access.js';
import { ok, type Command } from './types.js';
import { kcvOf, readKey } from './lib/keys.js';
import { keyUris } from './lib/uri.js';
import { readInput } from './lib/files.js';

export interface FindKeyOptions {
  cls?: number;
  keyType?: number;
  label?: string;
  id?: string;
  sess?: number;
  users?: number[];
  modulusFile?: string;
  kcv?: string;
  uri?: boolean;
}

const CLASSES = [CKO.PUBLIC_KEY, CKO.PRIVATE_KEY, CKO.SECRET_KEY];
/** -t values: kmu's key types are PKCS#11's CKK numbers. */
const KEY_TYPES = [0, 1, 3, 16, 18, 21, 31];

function oneOf(values: readonly number[], what: string) {
  return (text: string, flag: string): number => {
    if (!/^[0-9]+$/.test(text) || !values.includes(Number(text)))
      throw new UsageError(`${flag} takes a ${what} (${values.join(', ')}), not '${text}'`);
    return Number(text);
  };
}

function kcvText(text: string, flag: string): string {
  const hex = text.replace(/^0x/i, '').toLowerCase();
  if (!/^[0-9a-f]{6}$/.test(hex)) throw new UsageError(`${flag} takes a 3-byte key check value such as 0xbbb32a, not '${text}'`);
  return hex;
}

/** A modulus file: hex text (0x, spaces and line breaks allowed) or raw bytes. */
function readModulus(path: string): Buffer {
  const raw = readInput(path);
  const text = raw.toString('latin1').replace(/\s+/g, '').replace(/^0x/i, '');
  const m = /^[0-9a-fA-F]+$/.test(text) && text.length % 2 === 0 ? Buffer.from(text, 'hex') : raw;
  let i = 0;
  while (i < m.length - 1 && m[i] === 0) i++;
  return m.subarray(i);
}

export const findKey: Command<FindKeyOptions, { handles: number[]; uris: string[]; showUri?: boolean }> = {
  name: 'findKey',
  description: 'Find Key',
  op: 'Cfm3FindKey',
  needsLogin: true,
  syntax: `findKey -h

findKey [-c <key class>]
        [-t <key type>]
        [-l <key label>]
        [-id <key ID>]
        [-sess (0 | 1)]
        [-u <user-ids>]
        [-m <modulus>]
        [-kcv <key_check_value>]`,
  flags: [
    { flag: '-c', key: 'cls', parse: oneOf(CLASSES, 'key class'), metavar: '<key class>' },
    { flag: '-t', key: 'keyType', parse: oneOf(KEY_TYPES, 'key type'), metavar: '<key type>' },
    { flag: '-l', key: 'label', parse: v.label, metavar: '<key label>' },
    { flag: '-id', key: 'id', parse: v.keyId, metavar: '<key ID>' },
    { flag: '-sess', key: 'sess', parse: oneOf([0, 1], 'session flag'), metavar: '(0 | 1)' },
    { flag: '-u', key: 'users', parse: v.userIds, metavar: '<user-ids>' },
    { flag: '-m', key: 'modulusFile', parse: v.text('modulus file'), metavar: '<modulus>' },
    { flag: '-kcv', key: 'kcv', parse: kcvText, metavar: '<key_check_value>' },
    { flag: '-uri', key: 'uri' },
  ],
  async run(ctx, o) {
    const { session, user } = ctx.backend;
    const modulus = o.modulusFile !== undefined ? readModulus(o.modulusFile) : undefined;
    const base: Template = [];
    if (o.keyType !== undefined) base.push({ type: CKA.KEY_TYPE, value: o.keyType });
    if (o.label !== undefined) base.push({ type: CKA.LABEL, value: o.label });
    if (o.id !== undefined) base.push({ type: CKA.ID, value: Buffer.from(o.id, 'utf8') });
    if (o.sess !== undefined) base.push({ type: CKA.TOKEN, value: o.sess === 0 });
    if (modulus) base.push({ type: CKA.MODULUS, value: modulus });
    const objects: number[] = [];
    const publicKeys = new Set<number>();
    for (const cls of o.cls !== undefined ? [o.cls] : CLASSES) {
      const found = await session.find([{ type: CKA.CLASS, value: cls }, ...base]);
      objects.push(...found);
      if (cls === CKO.PUBLIC_KEY) found.forEach((x) => publicKeys.add(x));
    }
    const handles = await ctx.handles.list(objects);
    const matched: number[] = [];
    for (let i = 0; i < handles.length; i++) {
      const handle = handles[i]!;
      const meta = await ctx.handles.meta(handle);
      const isPublic = publicKeys.has(objects[i]!);
      // kmu lists what the current user can use (kmu/access.ts).
      const usable = (u: number) => decide(u, { meta, isPublic }, 'see').allow;
      if (!usable(user!.id)) continue;
      if (o.users && !o.users.every(usable)) continue;
      if (o.kcv !== undefined) {
        const key = await readKey(session, objects[i]!, await ctx.handles.publicValue(handle));
        if ((await kcvOf(session, key))?.toString('hex') !== o.kcv) continue;
      }
      matched.push(handle);
    }
    matched.sort((a, b) => a - b);
    const objectOf = new Map(handles.map((h, i) => [h, objects[i]!]));
    const uris = await keyUris(ctx, matched.map((h) => objectOf.get(h)!));
    return ok(findKey, { handles: matched, uris, ...(o.uri ? { showUri: true } : {}) });
  },
};
