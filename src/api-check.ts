// Compile-time only: each CommandMap entry (api.ts, the published types) still describes its
// command. If a command's result or options change shape, `tsc` fails here, naming it.
import type { CommandData, CommandMap, CommandName } from './api.js';
import type { Command } from './commands/types.js';
import type { deleteKey } from './commands/deleteKey.js';
import type { Error2String } from './commands/Error2String.js';
import type { exportPubKey } from './commands/exportPubKey.js';
import type { findKey } from './commands/findKey.js';
import type { genDSAKeyPair } from './commands/genDSAKeyPair.js';
import type { genECCKeyPair } from './commands/genECCKeyPair.js';
import type { getAttribute } from './commands/getAttribute.js';
import type { getKeyInfo } from './commands/getKeyInfo.js';
import type { listAttributes } from './commands/listAttributes.js';
import type { listECCCurveIds } from './commands/listECCCurveIds.js';
import type { loginHSM } from './commands/loginHSM.js';
import type { logoutHSM } from './commands/logoutHSM.js';
import type { setAttribute } from './commands/setAttribute.js';
import type { listUsers } from './commands/listUsers.js';
import type { shareKey } from './commands/shareKey.js';
import type { getToken } from './commands/getToken.js';
import type { approveToken } from './commands/approveToken.js';
import type { sign } from './commands/sign.js';
import type { verify } from './commands/verify.js';
import type { genRSAKeyPair } from './commands/genRSAKeyPair.js';
import type { genSymKey } from './commands/genSymKey.js';
import type { wrapKey } from './commands/wrapKey.js';
import type { unWrapKey } from './commands/unWrapKey.js';
import type { exSymKey } from './commands/exSymKey.js';
import type { imSymKey } from './commands/imSymKey.js';
import type { importPubKey } from './commands/importPubKey.js';
import type { exportPrivateKey } from './commands/exportPrivateKey.js';
import type { importPrivateKey } from './commands/importPrivateKey.js';
import type { aesWrapUnwrap } from './commands/aesWrapUnwrap.js';
import type { findSingleKey } from './commands/findSingleKey.js';
import type { getCert } from './commands/getCert.js';
import type { IsValidKeyHandlefile } from './commands/IsValidKeyHandlefile.js';
import type { getCaviumPrivKey } from './commands/getCaviumPrivKey.js';
import type { extractMaskedObject } from './commands/extractMaskedObject.js';
import type { insertMaskedObject } from './commands/insertMaskedObject.js';
import type { genPBEKey } from './commands/genPBEKey.js';

/** Name → the command object's type, for every CommandMap entry (a missing one fails below). */
interface Table {
  deleteKey: typeof deleteKey;
  Error2String: typeof Error2String;
  exportPubKey: typeof exportPubKey;
  findKey: typeof findKey;
  genDSAKeyPair: typeof genDSAKeyPair;
  genECCKeyPair: typeof genECCKeyPair;
  getAttribute: typeof getAttribute;
  getKeyInfo: typeof getKeyInfo;
  listAttributes: typeof listAttributes;
  listECCCurveIds: typeof listECCCurveIds;
  loginHSM: typeof loginHSM;
  logoutHSM: typeof logoutHSM;
  setAttribute: typeof setAttribute;
  listUsers: typeof listUsers;
  shareKey: typeof shareKey;
  getToken: typeof getToken;
  approveToken: typeof approveToken;
  sign: typeof sign;
  verify: typeof verify;
  genRSAKeyPair: typeof genRSAKeyPair;
  genSymKey: typeof genSymKey;
  wrapKey: typeof wrapKey;
  unWrapKey: typeof unWrapKey;
  exSymKey: typeof exSymKey;
  imSymKey: typeof imSymKey;
  importPubKey: typeof importPubKey;
  exportPrivateKey: typeof exportPrivateKey;
  importPrivateKey: typeof importPrivateKey;
  aesWrapUnwrap: typeof aesWrapUnwrap;
  findSingleKey: typeof findSingleKey;
  getCert: typeof getCert;
  IsValidKeyHandlefile: typeof IsValidKeyHandlefile;
  getCaviumPrivKey: typeof getCaviumPrivKey;
  extractMaskedObject: typeof extractMaskedObject;
  insertMaskedObject: typeof insertMaskedObject;
  genPBEKey: typeof genPBEKey;
}

type DataOf<C> = C extends Command<any, infer D> ? D : never;
type OptionKeysOf<C> = C extends Command<infer O, any> ? keyof O : never;

// true when the command's data fits the published result, and every published option is one of its keys.
export const fits: {
  [K in CommandName]: [DataOf<Table[K]>] extends [CommandData<K>]
    ? Exclude<keyof CommandMap[K]['options'], OptionKeysOf<Table[K]>> extends never
      ? true
      : 'an option in CommandMap is not one of the command\'s'
    : 'the command\'s data does not fit CommandMap\'s result';
} = {
  deleteKey: true,
  Error2String: true,
  exportPubKey: true,
  findKey: true,
  genDSAKeyPair: true,
  genECCKeyPair: true,
  getAttribute: true,
  getKeyInfo: true,
  listAttributes: true,
  listECCCurveIds: true,
  loginHSM: true,
  logoutHSM: true,
  setAttribute: true,
  listUsers: true,
  shareKey: true,
  getToken: true,
  approveToken: true,
  sign: true,
  verify: true,
  genRSAKeyPair: true,
  genSymKey: true,
  wrapKey: true,
  unWrapKey: true,
  exSymKey: true,
  imSymKey: true,
  importPubKey: true,
  exportPrivateKey: true,
  importPrivateKey: true,
  aesWrapUnwrap: true,
  findSingleKey: true,
  getCert: true,
  IsValidKeyHandlefile: true,
  getCaviumPrivKey: true,
  extractMaskedObject: true,
  insertMaskedObject: true,
  genPBEKey: true,
};
