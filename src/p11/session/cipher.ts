// Single-part encryption and decryption.
import type { Mechanism } from '../mechanism.js';
import type { NativeModule } from '../native.js';

export function encrypt(native: NativeModule, session: number, mechanism: Mechanism, key: number, data: Buffer): Promise<Buffer> {
  return native.encrypt(session, mechanism, key, data);
}

export function decrypt(native: NativeModule, session: number, mechanism: Mechanism, key: number, data: Buffer): Promise<Buffer> {
  return native.decrypt(session, mechanism, key, data);
}
