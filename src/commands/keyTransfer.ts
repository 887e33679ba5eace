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
];
