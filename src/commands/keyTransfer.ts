// The key generation, transfer and helper commands of issue 13, one file each; listed here so
// index.ts takes them in one line.
import type { Command } from './types.js';
import { aesWrapUnwrap } from './aesWrapUnwrap.js';
import { exSymKey } from './exSymKey.js';
import { exportPrivateKey } from './exportPrivateKey.js';
import { genRSAKeyPair } from './genRSAKeyPair.js';
import { genSymKey } from './genSymKey.js';
import { imSymKey } from './imSymKey.js';
import { importPrivateKey } from './importPrivateKey.js';
import { importPubKey } from './importPubKey.js';
import { unWrapKey } from './unWrapKey.js';
import { wrapKey } from './wrapKey.js';
import { extractMaskedObject } from './extractMaskedObject.js';
import { findSingleKey } from './findSingleKey.js';
import { genPBEKey } from './genPBEKey.js';
import { getCaviumPrivKey } from './getCaviumPrivKey.js';
import { getCert } from './getCert.js';
import { insertMaskedObject } from './insertMaskedObject.js';
import { IsValidKeyHandlefile } from './IsValidKeyHandlefile.js';

export const KEY_TRANSFER_COMMANDS: readonly Command<any, any>[] = [
  genRSAKeyPair,
  genSymKey,
  wrapKey,
  unWrapKey,
  exSymKey,
  imSymKey,
  importPubKey,
  exportPrivateKey,
  importPrivateKey,
  aesWrapUnwrap,
  findSingleKey,
  getCert,
  IsValidKeyHandlefile,
  getCaviumPrivKey,
  extractMaskedObject,
  insertMaskedObject,
  genPBEKey,
];
