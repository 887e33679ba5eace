import { CKA, CKM, ckaName, type Template } from '../p11/index.js';
import * as v from '../kmu/values.js';
import { ok, type Command } from './types.js';
import { createAfterChecks, validateKeyPairOptions } from './lib/keygen.js';
import { maskingKey, unmask } from './lib/masking.js';
import { made, type MadeKey } from './lib/newKey.js';
import { readInput } from './lib/files.js';

export const insertMaskedObject: Command<{ file: string; minSrv?: number; timeout?: number }, MadeKey> = {
  name: 'insertMaskedObject',
  description: 'Inserts a masked object',
  op: 'Cfm3InsertMaskedObject',
  needsLogin: true,
  syntax: `insertMaskedObject -h

insertMaskedObject -f <filename>
                   [-min_srv <minimum-number-of-servers>]
                   [-timeout <number-of-seconds>]`,
  flags: [
    { flag: '-f', key: 'file', parse: v.text('file path'), required: true, metavar: '<filename>' },
    { flag: '-min_srv', key: 'minSrv', parse: v.integer(1, 32), metavar: '<minimum-number-of-servers>' },
    { flag: '-timeout', key: 'timeout', parse: v.integer(0, 86_400), metavar: '<number-of-seconds>' },
  ],
  validate: (o) => validateKeyPairOptions({ ...o, label: '' }),
  async run(ctx, o) {
    const data = readInput(o.file, '-f');
    let header, wrapped: Buffer, masking: number;
    masking = await maskingKey(ctx, false);
    ({ header, wrapped } = await unmask(ctx, masking, data, o.file));
    const id = header.id ? Buffer.from(header.id, 'hex').toString('utf8') : undefined;
    const template: Template = [
      { type: CKA.CLASS, value: header.class },
      { type: CKA.KEY_TYPE, value: header.keyType },
      { type: CKA.TOKEN, value: header.token },
      { type: CKA.LABEL, value: header.label },
      ...(id ? [{ type: CKA.ID, value: Buffer.from(header.id, 'hex') }] : []),
    ];
    for (const [name, value] of Object.entries(header.attributes)) {
      const type = (CKA as Record<string, number>)[name.replace(/^CKA_/, '')];
      if (type !== undefined && ckaName(type) === name && typeof value === 'boolean') template.push({ type, value });
    }
    // The original's owner, sharing and quorum come with it (the page); its ID stays unique here.
    const meta = { owner: header.owner, shared: header.shared, mValue: header.mValue };
    const opts = { label: header.label, id, sess: !header.token, minSrv: o.minSrv, timeout: o.timeout };
    const key = await createAfterChecks(ctx, opts, () =>
      made(ctx, opts, template, () => ctx.backend.session.unwrapKey({ mechanism: CKM.AES_KEY_WRAP_PAD }, masking, wrapped, template), meta),
    );
    return ok(insertMaskedObject, key);
  },
};
