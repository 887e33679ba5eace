// The operator's files a command reads (-f, -s, -m, -wk, -aad …) and writes (-out …): a file
// that cannot be read is kmu's 0x09, one that cannot be written 0x08, each naming the file.
import { readFileSync, writeFileSync } from 'node:fs';
import { KmuError } from '../../kmu/errors.js';
import { RC } from '../../kmu/returnCodes.js';

const reason = (e: unknown) => (e as NodeJS.ErrnoException).code ?? String(e);

/** `what`: what the file is for (a flag, or words such as "signature file"), shown before its path. */
export function readInput(path: string, what?: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new KmuError(RC.FILE_READ, { detail: `cannot read ${what ? `${what} ` : ''}${path}: ${reason(e)}` });
  }
}

/** Secrets and key material are written 0600; public keys, signatures and quorum tokens are for others too (0644). */
export function writeOut(path: string, data: Buffer | string, mode = 0o600): void {
  try {
    writeFileSync(path, data, { mode });
  } catch (e) {
    throw new KmuError(RC.FILE_WRITE, { detail: `cannot write ${path}: ${reason(e)}` });
  }
}
