// Each key's PKCS#11 URI (RFC 7512), for --json and -uri: token, object label, id and type, so
// that p11tool or OpenSSL's pkcs11 engine/provider can use the key kmu11 printed.
import { CKA, CKO, type Template } from '../../p11/index.js';
import type { CommandContext } from '../types.js';

type KeyType = 'public' | 'private' | 'secret';

/** The URI for a key of `type` with these CKA_LABEL and CKA_ID values (read, or from a template). */
function uriOf(ctx: CommandContext, type: KeyType, label: unknown, id: unknown): Promise<string> {
  return ctx.backend.keyUri({
    type,
    label: label === undefined ? undefined : Buffer.isBuffer(label) ? label.toString('utf8') : String(label),
    id: id === undefined ? undefined : Buffer.isBuffer(id) ? id : Buffer.from(String(id), 'utf8'),
  });
}

/** The URI of each object, in order (by its class, CKA_LABEL and CKA_ID as the token has them). */
export async function keyUris(ctx: CommandContext, objects: number[]): Promise<string[]> {
  const out: string[] = [];
  for (const o of objects) {
    const [cls, label, id] = await ctx.backend.session.getAttributes(o, [CKA.CLASS, CKA.LABEL, CKA.ID]);
    const v = (a: typeof cls) => (a && 'value' in a ? a.value : undefined);
    const c = v(cls);
    out.push(await uriOf(ctx, c === CKO.PUBLIC_KEY ? 'public' : c === CKO.PRIVATE_KEY ? 'private' : 'secret', v(label), v(id)));
  }
  return out;
}

/**
 * The URI of a key just made from `template` (its CKA_LABEL and CKA_ID are what the token
 * stores): no read of the key, a round trip saved on a networked HSM.
 */
export function templateKeyUri(ctx: CommandContext, type: KeyType, template: Template): Promise<string> {
  const value = (t: number) => template.find((a) => a.type === t)?.value;
  return uriOf(ctx, type, value(CKA.LABEL), value(CKA.ID));
}
