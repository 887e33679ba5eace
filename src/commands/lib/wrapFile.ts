// kmu11's wrapped-key file: wrapKey writes, unWrapKey reads. Without -noheader the wrapped
// bytes follow a header naming what unWrapKey needs to rebuild the key (class, type, label, ID,
// usage) — kmu's own header is CloudHSM's private format; this one is kmu11's, one JSON line:
//   kmu11-wrapped-key 1\n{"mechanism":4,"class":4,"keyType":21,...}\n<wrapped bytes>
import { UsageError } from '../../kmu/errors.js';

const MAGIC = 'kmu11-wrapped-key 1\n';

export interface WrapHeader {
  mechanism: number;
  class: number;
  keyType: number;
  label: string;
  /** Hex of CKA_ID. */
  id: string;
  /** CKA name → boolean usage and sensitivity attributes of the wrapped key. */
  attributes: Record<string, boolean>;
}

export function withHeader(header: WrapHeader, wrapped: Buffer): Buffer {
  return Buffer.concat([Buffer.from(MAGIC + JSON.stringify(header) + '\n', 'utf8'), wrapped]);
}

export function hasHeader(file: Buffer): boolean {
  return file.subarray(0, MAGIC.length).toString('latin1') === MAGIC;
}

export function parseHeader(file: Buffer, name: string): { header: WrapHeader; wrapped: Buffer } {
  const end = file.indexOf(0x0a, MAGIC.length);
  let header: WrapHeader;
  try {
    if (end < 0) throw new Error('no header line');
    header = JSON.parse(file.subarray(MAGIC.length, end).toString('utf8')) as WrapHeader;
    if (typeof header.class !== 'number' || typeof header.keyType !== 'number' || typeof header.attributes !== 'object')
      throw new Error('fields missing');
  } catch (e) {
    throw new UsageError(`-f ${name}: the wrapped key's header is damaged (${(e as Error).message})`);
  }
  return { header, wrapped: file.subarray(end + 1) };
}
