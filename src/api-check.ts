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
};
