// Any PKCS#11 module, by path, and one of its tokens, by label. kmu's loginHSM maps to
// C_Login(CKU_USER, <password>): the -s name is only recorded, since PKCS#11 has a single
// normal user per token. Sharing and quorum do not exist here; a token is one HSM unless the
// config file says how many it stands for ("servers"); -attest pins the module and token.
import { KmuError } from '../kmu/errors.js';
import { RC } from '../kmu/returnCodes.js';
import type { Template } from '../p11/index.js';
import type { Backend, KeyPairRequest, KmuUser } from './backend.js';
import { checkPairAgainst, templatesFor, tokenRules, type TokenRules } from './tokenRules.js';
import type { Kmu11Config } from './config.js';
import type { AttestPins } from './attest.js';
import { checkUserType, TOKEN_USER_ID, TokenBackend, type TokenBackendParts } from './token.js';
import { chooseToken, loadModule, openRwSession, tokenFileTurn } from './tokenAccess.js';

const GENERIC_CAPABILITIES = { sharing: false, quorum: false, servers: 1, attestation: true } as const;

class GenericBackend extends TokenBackend {
  readonly kind = 'generic' as const;

  constructor(
    parts: TokenBackendParts,
    override readonly tokenRules: TokenRules,
  ) {
    super(parts);
  }

  checkKeyPair(req: KeyPairRequest): void {
    checkPairAgainst(this.tokenRules, req);
  }

  keyPairTemplates(_req: KeyPairRequest, pub: Template, priv: Template): { publicTemplate: Template; privateTemplate: Template } {
    return templatesFor(this.tokenRules, pub, priv);
  }

  async login(type: string, name: string, password: string): Promise<KmuUser> {
    checkUserType(type);
    if (this.currentUser) throw new KmuError(RC.ALREADY_LOGGED_IN);
    await this.tokenLogin(password, false);
    this.currentUser = { id: TOKEN_USER_ID, name, type: 'CU' };
    return this.currentUser;
  }
}

/** Open `config.module` and its token `config.token` (or its only initialized token). */
export async function openGeneric(config: Pick<Kmu11Config, 'module' | 'token' | 'home'> & { module: string; extra?: Kmu11Config['extra'] }): Promise<Backend> {
  const module = await loadModule(config.module, undefined, config.home);
  try {
    const { slot, label } = await tokenFileTurn(module, config.home, 'read', () => chooseToken(module, config.token));
    const session = await openRwSession(slot, label);
    const rules = tokenRules((await module.getInfo()).manufacturerID);
    return new GenericBackend({
      module,
      slot,
      session,
      home: config.home,
      capabilities: { ...GENERIC_CAPABILITIES, servers: config.extra?.servers ?? 1 },
      attestPins: config.extra?.attest as AttestPins | undefined,
    }, rules);
  } catch (e) {
    await module.close().catch(() => undefined);
    throw e;
  }
}
