// The command table: every kmu command kmu11 has, one file each.
import type { Command } from './types.js';
import { Error2String } from './Error2String.js';
import { deleteKey } from './deleteKey.js';
import { exit } from './exit.js';
import { exportPubKey } from './exportPubKey.js';
import { findKey } from './findKey.js';
import { genDSAKeyPair } from './genDSAKeyPair.js';
import { genECCKeyPair } from './genECCKeyPair.js';
import { getAttribute } from './getAttribute.js';
import { getKeyInfo } from './getKeyInfo.js';
import { help } from './help.js';
import { listAttributes } from './listAttributes.js';
import { listECCCurveIds } from './listECCCurveIds.js';
import { loginHSM } from './loginHSM.js';
import { logoutHSM } from './logoutHSM.js';
import { setAttribute } from './setAttribute.js';
import { listUsers } from './listUsers.js';
import { shareKey } from './shareKey.js';
import { getToken } from './getToken.js';
import { approveToken } from './approveToken.js';
import { sign } from './sign.js';
import { verify } from './verify.js';
import { KEY_TRANSFER_COMMANDS } from './keyTransfer.js';

export const COMMANDS: readonly Command<any, any>[] = [
  exit,
  help,
  loginHSM,
  logoutHSM,
  genDSAKeyPair,
  genECCKeyPair,
  exportPubKey,
  deleteKey,
  setAttribute,
  getKeyInfo,
  findKey,
  getAttribute,
  Error2String,
  listAttributes,
  listECCCurveIds,
  listUsers,
  shareKey,
  getToken,
  approveToken,
  sign,
  verify,
  ...KEY_TRANSFER_COMMANDS,
];

const byName = new Map(COMMANDS.map((c) => [c.name, c]));

export function findCommand(name: string): Command<any, any> | undefined {
  return byName.get(name);
}

export type { Command, CommandContext, CommandResult } from './types.js';
