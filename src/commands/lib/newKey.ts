// What every command that makes one key (genSymKey, unWrapKey, imSymKey, importPubKey,
// importPrivateKey, insertMaskedObject) shares with the pair generators (keygen.ts): explicit
// attributes from -l/-id/-sess/-nex, the owner and sharing recorded, a stable handle, and the
// object destroyed again if anything after its creation fails.
import { CKA, CKO, type Template } from '../../p11/index.js';
import type { SymKeyType } from '../../kmu/keyTypes.js';
import type { CommandContext } from '../types.js';
import { templateJson, type KeyPairOptions } from './keygen.js';

export interface MadeKey {
  handle: number;
  token: boolean;
  template: Record<string, boolean | number | string>;
}

/** CKA_TOKEN, CKA_LABEL, CKA_ID from the flags. */
export function identity(o: Partial<KeyPairOptions>): Template {
  return [
    { type: CKA.TOKEN, value: !o.sess },
    ...(o.label !== undefined ? [{ type: CKA.LABEL, value: o.label }] : []),
    ...(o.id !== undefined ? [{ type: CKA.ID, value: Buffer.from(o.id, 'utf8') }] : []),
  ];
}

/** A secret key of `type`: every usage and sensitivity attribute explicit. */
export function secretTemplate(o: Partial<KeyPairOptions>, type: SymKeyType): Template {
  return [
    { type: CKA.CLASS, value: CKO.SECRET_KEY },
    { type: CKA.KEY_TYPE, value: type.ckk },
    ...identity(o),
    { type: CKA.PRIVATE, value: true },
    { type: CKA.SENSITIVE, value: true },
    { type: CKA.EXTRACTABLE, value: !o.nex },
    { type: CKA.ENCRYPT, value: type.usage.encrypt },
    { type: CKA.DECRYPT, value: type.usage.decrypt },
    { type: CKA.WRAP, value: type.usage.wrap },
    { type: CKA.UNWRAP, value: type.usage.unwrap },
    { type: CKA.SIGN, value: type.usage.sign },
    { type: CKA.VERIFY, value: type.usage.verify },
    { type: CKA.DERIVE, value: false },
  ];
}

/**
 * `create` makes the object; then it gets its handle. Any failure after creation destroys it:
 * a failed command leaves nothing behind.
 */
export async function made(
  ctx: CommandContext,
  o: Partial<KeyPairOptions>,
  template: Template,
  create: () => Promise<number>,
  /** Owner and sharing other than the creator's (insertMaskedObject keeps the original's). */
  meta?: { owner: number; shared: number[]; mValue: number },
): Promise<MadeKey> {
  const object = await create();
  try {
    const [handle] = await ctx.handles.register(
      [{ object, meta: meta ?? { owner: ctx.backend.user!.id, shared: o.users ?? [], mValue: o.mValue ?? 0 } }],
      ctx.backend.session,
    );
    return { handle: handle!, token: !o.sess, template: templateJson(template) };
  } catch (e) {
    await ctx.backend.session.destroyObject(object).catch(() => undefined);
    throw e;
  }
}
