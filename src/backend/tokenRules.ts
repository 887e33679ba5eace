// What particular PKCS#11 implementations refuse, as data: a generic backend applies the rules
// of the module it loaded so that kmu's commands work there as far as the token allows, and what
// it cannot do is refused in kmu's words before anything is created.
import { KmuError } from '../kmu/errors.js';
import { RC } from '../kmu/returnCodes.js';
import { CKA, type Template } from '../p11/index.js';
import type { KeyPairRequest } from './backend.js';

export interface TokenRules {
  /** As the library names itself (CK_INFO.manufacturerID). */
  name: string;
  /** The token makes session objects (CKA_TOKEN=false). */
  sessionObjects: boolean;
  /** The token accepts a private key both CKA_EXTRACTABLE and CKA_SENSITIVE. */
  extractableSensitive: boolean;
  /** Attributes the token sets itself and refuses when sent: left out of the templates. */
  omitPublic: number[];
  omitPrivate: number[];
}

const ANY: TokenRules = { name: 'any', sessionObjects: true, extractableSensitive: true, omitPublic: [], omitPrivate: [] };

/** Measured on tpm2-pkcs11 1.9 over swtpm (README "Tokens"). */
const KNOWN: Array<{ manufacturer: RegExp; rules: TokenRules }> = [
  {
    manufacturer: /^tpm2-software\.github\.io$/,
    rules: {
      name: 'tpm2-pkcs11',
      // "Expected attr 0x1 to be 0": every object is a token object.
      sessionObjects: false,
      // "Cannot mark object both extractable AND sensitive".
      extractableSensitive: false,
      // "User specified and TPM specified attr mismatch": the TPM decides these usages itself.
      omitPublic: [CKA.ENCRYPT],
      omitPrivate: [CKA.DECRYPT],
    },
  },
];

export function tokenRules(libraryManufacturer: string): TokenRules {
  return KNOWN.find((k) => k.manufacturer.test(libraryManufacturer.trim()))?.rules ?? ANY;
}

/** Refuses, before anything is made, a pair the token's rules rule out. */
export function checkPairAgainst(rules: TokenRules, req: KeyPairRequest): void {
  if (req.sess && !rules.sessionObjects)
    throw new KmuError(RC.NOT_SUPPORTED, { detail: `-sess: ${rules.name} makes no session objects; every key it makes is a token key` });
  if (!req.nex && !rules.extractableSensitive)
    throw new KmuError(RC.NOT_SUPPORTED, {
      detail: `${rules.name} refuses a private key both extractable and sensitive (kmu's default without -nex); add -nex`,
    });
}

export function templatesFor(rules: TokenRules, pub: Template, priv: Template): { publicTemplate: Template; privateTemplate: Template } {
  return {
    publicTemplate: pub.filter((a) => !rules.omitPublic.includes(a.type)),
    privateTemplate: priv.filter((a) => !rules.omitPrivate.includes(a.type)),
  };
}
