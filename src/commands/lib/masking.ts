// The masking key extractMaskedObject and insertMaskedObject use, standing for the key a
// CloudHSM cluster masks objects with. On a PKCS#11 token it is an AES-256 key kept on the
// token, never extractable, made on first use (under the backend's generation lock, so one per token). Two
// homes share it when one's token was cloned from the other's after it was made (the token
// directory copied, as a CloudHSM cluster restored from another's backup): objects masked in
// one insert in the other, and nowhere else.
//
// It is registered with an owner no CloudHSM user can be (MASKING_OWNER), so findKey shows it
// to nobody and no user can delete or export it.
//
// A masked object file (kmu11's format; CloudHSM's is its firmware's):
//   kmu11-masked-object 1\n<header JSON>\n<key wrapped with CKM_AES_KEY_WRAP_PAD><16-byte AES-CMAC>
// The CMAC, made by the masking key on the token over everything before it, binds the header
// (attributes, owner, sharing, quorum) to the key material.
import { CKA, CKK, CKM, CKO, type Template } from '../../p11/index.js';
import { KmuError } from '../../kmu/errors.js';
import { RC } from '../../kmu/returnCodes.js';
import type { CommandContext } from '../types.js';
import type { KeyHeader } from './wrapFile.js';

const MASKING_OWNER = 0x10000;
const LABEL = 'kmu11 masking key';
const ID = Buffer.from('kmu11-masking-key', 'utf8');
const MAGIC = 'kmu11-masked-object 1\n';
const MAC_BYTES = 16;

const FIND: Template = [
  { type: CKA.CLASS, value: CKO.SECRET_KEY },
  { type: CKA.KEY_TYPE, value: CKK.AES },
  { type: CKA.LABEL, value: LABEL },
  { type: CKA.ID, value: ID },
  { type: CKA.TOKEN, value: true },
];

async function find(ctx: CommandContext): Promise<number | undefined> {
  const found = await ctx.backend.session.find(FIND);
  if (found.length > 1) throw new KmuError(RC.GENERAL_ERROR, { detail: `the token holds ${found.length} masking keys; it should hold one` });
  return found[0];
}

/** The token's masking key; `create` makes it when the token has none. */
export async function maskingKey(ctx: CommandContext, create: boolean): Promise<number> {
  const existing = await find(ctx);
  if (existing !== undefined) return existing;
  if (!create)
    throw new KmuError(RC.INVALID_INPUT, {
      detail: 'this token has no masking key: masked objects insert only into the token they came from or a clone of it',
    });
  const make = async (): Promise<number> => {
    const again = await find(ctx);
    if (again !== undefined) return again;
    const { session } = ctx.backend;
    const object = await session.generateKey({ mechanism: CKM.AES_KEY_GEN }, [
      ...FIND,
      { type: CKA.VALUE_LEN, value: 32 },
      { type: CKA.PRIVATE, value: true },
      { type: CKA.SENSITIVE, value: true },
      { type: CKA.EXTRACTABLE, value: false },
      { type: CKA.WRAP, value: true },
      { type: CKA.UNWRAP, value: true },
      { type: CKA.SIGN, value: true },
      { type: CKA.VERIFY, value: true },
      { type: CKA.ENCRYPT, value: false },
      { type: CKA.DECRYPT, value: false },
      { type: CKA.DERIVE, value: false },
    ]);
    try {
      await ctx.handles.register([{ object, meta: { owner: MASKING_OWNER, shared: [], mValue: 0 } }]);
    } catch (e) {
      await session.destroyObject(object).catch(() => undefined);
      throw e;
    }
    return object;
  };
  return ctx.backend.exclusive(ID, make);
}

export interface MaskHeader extends KeyHeader {
  token: boolean;
  owner: number;
  shared: number[];
  mValue: number;
}

export async function mask(ctx: CommandContext, masking: number, header: MaskHeader, wrapped: Buffer): Promise<Buffer> {
  const body = Buffer.concat([Buffer.from(MAGIC + JSON.stringify(header) + '\n', 'utf8'), wrapped]);
  const mac = await ctx.backend.session.sign({ mechanism: CKM.AES_CMAC }, masking, body);
  return Buffer.concat([body, mac]);
}

export async function unmask(ctx: CommandContext, masking: number, file: Buffer, name: string): Promise<{ header: MaskHeader; wrapped: Buffer }> {
  const bad = (why: string) => new KmuError(RC.INVALID_INPUT, { detail: `-f ${name}: ${why}` });
  if (file.subarray(0, MAGIC.length).toString('latin1') !== MAGIC || file.length < MAGIC.length + MAC_BYTES + 2)
    throw bad('not a masked object');
  const body = file.subarray(0, file.length - MAC_BYTES);
  const mac = file.subarray(file.length - MAC_BYTES);
  if (!(await ctx.backend.session.verify({ mechanism: CKM.AES_CMAC }, masking, body, mac)))
    throw bad('masked by another masking key (a token that is not this one or a clone of it), or altered');
  const end = body.indexOf(0x0a, MAGIC.length);
  const header = JSON.parse(body.subarray(MAGIC.length, end).toString('utf8')) as MaskHeader;
  return { header, wrapped: body.subarray(end + 1) };
}
