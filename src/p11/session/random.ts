// Random number generation.
import type { NativeModule } from '../native.js';

export function generateRandom(native: NativeModule, session: number, length: number): Promise<Buffer> {
  return native.C_GenerateRandom(session, length);
}
