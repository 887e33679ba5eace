import { CKA, CKK, CKO, ckaName, type Template } from '../p11/index.js';
import { KmuError, UsageError } from '../kmu/errors.js';
import { KEY_CLASSES, KEY_TYPES, SYM_KEY_TYPES } from '../kmu/keyTypes.js';
import { RC } from '../kmu/returnCodes.js';
import * as v from '../kmu/values.js';
import { GCM_IV_BYTES, type WrapMechanism } from '../kmu/wrapMechanisms.js';
import { ok, type Command } from './types.js';
import { createAfterChecks, pairTemplates, validateKeyPairOptions, type KeyPairOptions } from './lib/keygen.js';
import { made, secretTemplate, type MadeKey } from './lib/newKey.js';
import { requireWrappingKey, resolveKey, unwrapWith } from './lib/transfer.js';
import { gcmUnwrap, readAad } from './lib/wrapGcm.js';
import { hasHeader, parseHeader } from './lib/wrapFile.js';
import { hashFlag, ivFlag, mechanismFlag, validateWrapFlags } from './lib/transferFlags.js';
import { readInput } from './lib/files.js';

export interface UnWrapKeyOptions extends Omit<KeyPairOptions, 'label'> {
  file: string;
  wrapping: number;
  mechanism: WrapMechanism;
  hash?: number;
  aad?: string;
  tagSize?: number;
  ivFile?: string;
  noheader?: boolean;
  label?: string;
  keyType?: number;
  keyClass?: number;
  iv?: Buffer;
}

const oneOf = (table: ReadonlyArray<{ id: number; name: string }>, what: string) => (text: string, flag: string): number => {
  const hit = /^[0-9]+$/.test(text) ? table.find((t) => t.id === Number(text)) : undefined;
  if (!hit) throw new UsageError(`${flag} takes a ${what}: ${table.map((t) => `${t.id} (${t.name})`).join(', ')}; not '${text}'`);
  return hit.id;
};

/** -noheader keys get the usage genSymKey / the pair generators give keys of their type. */
function defaultTemplate(o: UnWrapKeyOptions, cls: number, kt: number): Template {
  if (cls === CKO.SECRET_KEY) {
    const type = SYM_KEY_TYPES.find((t) => t.ckk === kt)!;
    return secretTemplate({ ...o, label: o.label }, type).filter((a) => a.type !== CKA.CLASS && a.type !== CKA.KEY_TYPE);
  }
  // A private key as the pair generators make its type, with -l and -id (RSA keys also decrypt and unwrap).
  const rsa = kt === CKK.RSA;
  return pairTemplates({ ...o, label: o.label ?? '' }, kt)
    .privateTemplate.filter((a) => a.type !== CKA.CLASS && a.type !== CKA.KEY_TYPE)
    .map((a) => (rsa && (a.type === CKA.DECRYPT || a.type === CKA.UNWRAP) ? { type: a.type, value: true } : a));
}

export const unWrapKey: Command<UnWrapKeyOptions, MadeKey & { noheader: boolean }> = {
  name: 'unWrapKey',
  description: 'UnWraps a key into HSM using the specified handle',
  op: 'Cfm3UnWrapKey',
  needsLogin: true,
  syntax: `unWrapKey -h

unWrapKey -f <key-file-name>
          -w <wrapping-key-handle>
          [-sess]
          [-min_srv <minimum-number-of-HSMs>]
          [-timeout <number-of-seconds>]
          [-aad <additional authenticated data filename>]
          [-tag_size <tag size>]
          [-iv_file <IV file>]
          [-attest]
          [-m <wrapping-mechanism>]
          [-t <hash-type>]
          [-nex]
          [-u <user id list>]
          [-m_value <number of users needed for approval>]
          [-noheader]
          [-l <key-label>]
          [-id <key-id>]
          [-kt <key-type>]
          [-kc <key-class]
          [-i <unwrapping-IV>]`,
  flags: [
    { flag: '-f', key: 'file', parse: v.text('file path'), required: true, metavar: '<key-file-name>' },
    { flag: '-w', key: 'wrapping', parse: v.handle, required: true, metavar: '<wrapping-key-handle>' },
    { flag: '-sess', key: 'sess' },
    { flag: '-min_srv', key: 'minSrv', parse: v.integer(1, 32), metavar: '<minimum-number-of-HSMs>' },
    { flag: '-timeout', key: 'timeout', parse: v.integer(0, 86_400), metavar: '<number-of-seconds>' },
    { flag: '-aad', key: 'aad', parse: v.text('file path'), metavar: '<additional authenticated data filename>' },
    { flag: '-tag_size', key: 'tagSize', parse: v.integer(8, 16), metavar: '<tag size>' },
    { flag: '-iv_file', key: 'ivFile', parse: v.text('file path'), metavar: '<IV file>' },
    { flag: '-attest', key: 'attest' },
    { flag: '-m', key: 'mechanism', parse: mechanismFlag, required: true, metavar: '<wrapping-mechanism>' },
    { flag: '-t', key: 'hash', parse: hashFlag, metavar: '<hash-type>' },
    { flag: '-nex', key: 'nex' },
    { flag: '-u', key: 'users', parse: v.userIds, metavar: '<user id list>' },
    { flag: '-m_value', key: 'mValue', parse: v.integer(0, 8), metavar: '<number of users needed for approval>' },
    { flag: '-noheader', key: 'noheader' },
    { flag: '-l', key: 'label', parse: v.label, metavar: '<key-label>' },
    { flag: '-id', key: 'id', parse: v.keyId, metavar: '<key-id>' },
    { flag: '-kt', key: 'keyType', parse: oneOf(KEY_TYPES, 'key type'), metavar: '<key-type>' },
    { flag: '-kc', key: 'keyClass', parse: oneOf(KEY_CLASSES, 'key class'), metavar: '<key-class>' },
    { flag: '-i', key: 'iv', parse: ivFlag, metavar: '<unwrapping-IV>' },
  ],
  validate(o) {
    validateWrapFlags(o);
    if (o.noheader) {
      for (const [k, flag, what] of [['label', '-l', 'key label'], ['keyClass', '-kc', 'key class'], ['keyType', '-kt', 'key type']] as const)
        if (o[k] === undefined) throw new UsageError(`-noheader needs ${flag} (${what})`);
      const cls = KEY_CLASSES.find((c) => c.id === o.keyClass)!.cko;
      const sym = [16, 21, 31].includes(o.keyType!);
      if ((cls === CKO.SECRET_KEY) !== sym) throw new UsageError(`-kc ${o.keyClass} and -kt ${o.keyType} do not go together: a secret key (4) is type 16, 21 or 31; a private key (3) 0, 1 or 3`);
    }
    validateKeyPairOptions({ ...o, label: o.label ?? '' });
  },
  async run(ctx, o) {
    const data = readInput(o.file, '-f');
    let wrapped = data;
    let cls: number;
    let kt: number;
    let template: Template;
    if (o.noheader) {
      cls = KEY_CLASSES.find((c) => c.id === o.keyClass)!.cko;
      kt = KEY_TYPES.find((t) => t.id === o.keyType)!.ckk;
      template = defaultTemplate(o, cls, kt);
    } else {
      if (!hasHeader(data))
        throw new KmuError(RC.INVALID_INPUT, { detail: `-f ${o.file} has no kmu11 wrapped-key header; for a key wrapped by another tool use -noheader with -l, -kc and -kt` });
      const parsed = parseHeader(data, o.file);
      wrapped = parsed.wrapped;
      ({ class: cls, keyType: kt } = parsed.header);
      const byName = new Map(Object.entries(parsed.header.attributes));
      const carried: Template = [];
      for (const [name, value] of byName) {
        const type = (CKA as Record<string, number>)[name.replace(/^CKA_/, '')];
        if (type !== undefined && ckaName(type) === name) carried.push({ type, value: type === CKA.EXTRACTABLE ? value && !o.nex : value });
      }
      const label = o.label ?? parsed.header.label;
      // The ID is not carried over: IDs are unique on the token, and the original may still be there.
      const id = o.id;
      template = [
        { type: CKA.TOKEN, value: !o.sess },
        { type: CKA.LABEL, value: label },
        ...(id ? [{ type: CKA.ID, value: Buffer.from(id, 'utf8') }] : []),
        ...carried,
      ];
      if (!carried.some((a) => a.type === CKA.EXTRACTABLE)) template.push({ type: CKA.EXTRACTABLE, value: !o.nex });
    }
    template = [{ type: CKA.CLASS, value: cls }, { type: CKA.KEY_TYPE, value: kt }, ...template];
    const key = await createAfterChecks(ctx, { ...o, label: o.label ?? '' }, async () => {
      const wrapping = await resolveKey(ctx, o.wrapping);
      requireWrappingKey(o.mechanism, wrapping, 'unwrap');
      if (o.mechanism.gcm) {
        // The IV: from -iv_file (with -noheader, AES_GCM), else the blob's first 12 bytes.
        const iv = o.ivFile !== undefined ? readInput(o.ivFile, '-iv_file') : wrapped.subarray(0, GCM_IV_BYTES);
        const blob = o.ivFile !== undefined ? wrapped : wrapped.subarray(GCM_IV_BYTES);
        const opts = { aad: readAad(o.aad), tagBytes: o.tagSize };
        return made(ctx, o, template, () => gcmUnwrap(ctx, o.mechanism, wrapping.object, iv, blob, template, opts));
      }
      return made(ctx, o, template, () => unwrapWith(ctx, o.mechanism, wrapping.object, wrapped, template, o.hash, o.iv));
    });
    return ok(unWrapKey, { ...key, noheader: !!o.noheader });
  },
};
