// Key management: generation, wrapping and unwrapping.
import type { Template } from '../attributes.js';
import type { Mechanism } from '../mechanism.js';
import type { NativeModule } from '../native.js';

export function generateKeyPair(
  native: NativeModule,
  session: number,
  mechanism: Mechanism,
  publicTemplate: Template,
  privateTemplate: Template,
): Promise<{ publicKey: number; privateKey: number }> {
  return native.C_GenerateKeyPair(session, mechanism, publicTemplate, privateTemplate);
}

export function generateKey(native: NativeModule, session: number, mechanism: Mechanism, template: Template): Promise<number> {
  return native.C_GenerateKey(session, mechanism, template);
}

export function wrapKey(
  native: NativeModule,
  session: number,
  mechanism: Mechanism,
  wrappingKey: number,
  key: number,
): Promise<Buffer> {
  return native.C_WrapKey(session, mechanism, wrappingKey, key);
}

export function unwrapKey(
  native: NativeModule,
  session: number,
  mechanism: Mechanism,
  unwrappingKey: number,
  wrapped: Buffer,
  template: Template,
): Promise<number> {
  return native.C_UnwrapKey(session, mechanism, unwrappingKey, wrapped, template);
}
