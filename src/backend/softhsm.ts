// Where the system's SoftHSMv2 module lives (Debian/Ubuntu multiarch, Fedora/RHEL, /usr/local builds).
import { existsSync } from 'node:fs';
import { SetupError } from '../kmu/errors.js';

const SOFTHSM_MODULE_PATHS: readonly string[] = [
  '/usr/lib/softhsm/libsofthsm2.so',
  '/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so',
  '/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so',
  '/usr/local/lib/softhsm/libsofthsm2.so',
  '/usr/lib64/pkcs11/libsofthsm2.so',
];

/**
 * The SoftHSMv2 module path. KMU11_SOFTHSM_MODULE, when set, is the only place looked at
 * (tests use it to simulate a machine without SoftHSM).
 */
export function findSoftHsmModule(env: NodeJS.ProcessEnv = process.env): string {
  const override = env.KMU11_SOFTHSM_MODULE;
  const candidates = override ? [override] : SOFTHSM_MODULE_PATHS;
  const found = candidates.find((p) => existsSync(p));
  if (!found) {
    throw new SetupError(
      `SoftHSMv2 not found (looked in ${candidates.join(', ')}); install it with: apt-get install softhsm2`,
    );
  }
  return found;
}
