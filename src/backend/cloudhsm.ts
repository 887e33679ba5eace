// AWS CloudHSM's PKCS#11 library. Its C_Login PIN is "<CU name>:<password>" (pkcs11-pin.md),
// so loginHSM -s/-p map onto it directly. Sessions are always RW (SDK 5 has no RO sessions).
// Key sharing and quorum are CloudHSM CLI features with no PKCS#11 call, and the library does
// not say how many HSMs the cluster has: those capabilities are off, and the commands that
// need them refuse before creating anything. Not testable without the library; kept small.
import { KmuError } from '../kmu/errors.js';
import { RC } from '../kmu/returnCodes.js';
import type { Backend, KmuUser } from './backend.js';
import { CLOUDHSM_MODULE, type Kmu11Config } from './config.js';
import { checkUserType, chooseToken, loadModule, openRwSession, TOKEN_USER_ID, TokenBackend } from './token.js';

/** The label CloudHSM's client gives its token (SDK 3: "cavium"); otherwise its only token is used. */
export const CLOUDHSM_TOKEN_LABELS = ['cavium'];

export const CLOUDHSM_CAPABILITIES = { sharing: false, quorum: false, servers: 0, attestation: false } as const;

/** CloudHSM's PKCS#11 PIN for a crypto user. */
export function cloudHsmPin(name: string, password: string): string {
  return `${name}:${password}`;
}

class CloudHsmBackend extends TokenBackend {
  readonly kind = 'cloudhsm' as const;

  async login(type: string, name: string, password: string): Promise<KmuUser> {
    checkUserType(type);
    if (this.currentUser) throw new KmuError(RC.ALREADY_LOGGED_IN);
    if (name === '' || name.includes(':')) throw new KmuError(RC.LOGIN_FAILED, { detail: 'invalid user name' });
    await this.tokenLogin(cloudHsmPin(name, password), false);
    // CloudHSM's user ids are not visible through PKCS#11.
    this.currentUser = { id: TOKEN_USER_ID, name, type: 'CU' };
    return this.currentUser;
  }
}

export async function openCloudHsm(config: Pick<Kmu11Config, 'module' | 'token' | 'home'>): Promise<Backend> {
  const path = config.module ?? CLOUDHSM_MODULE;
  const module = await loadModule(path, 'CloudHSM PKCS#11 library');
  try {
    const { slot, label } = await chooseToken(module, config.token, CLOUDHSM_TOKEN_LABELS);
    const session = await openRwSession(slot, label);
    return new CloudHsmBackend({ module, slot, session, home: config.home, capabilities: { ...CLOUDHSM_CAPABILITIES } });
  } catch (e) {
    await module.close().catch(() => undefined);
    throw e;
  }
}
