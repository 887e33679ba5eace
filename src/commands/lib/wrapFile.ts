// kmu11's wrapped-key file: wrapKey writes, unWrapKey reads. Without -noheader the wrapped
// bytes follow a header naming what unWrapKey needs to rebuild the key (class, type, label, ID,
// usage) — kmu's own header is CloudHSM's private format; this one is kmu11's, one JSON line:
//   kmu11-wrapped-key 1\n{"mechanism":4,"class":4,"keyType":21,...}\n<wrapped bytes>
import { CKA, ckaName } from '../../p11/index.js';
import { UsageError } from '../../kmu/errors.js';
import type { KeyView } from './keys.js';

const MAGIC = 'kmu11-wrapped-key 1\n';

/** What a key file says of its key, enough to make it again (here, and in a masked object). */
export interface KeyHeader {
  class: number;
  keyType: number;
  label: string;
  /** Hex of CKA_ID. */
  id: string;
  /** CKA name → boolean usage and sensitivity attributes of the wrapped key. */
  attributes: Record<string, boolean>;
}

export interface WrapHeader extends KeyHeader {
  mechanism: number;
}

/** A secret or private key's header; `carried`: the attributes it keeps (CARRIED of its class). */
export function keyHeader(view: KeyView, carried: readonly number[]): KeyHeader {
  const attributes: Record<string, boolean> = {};
  for (const t of carried) {
    const val = view.get(t);
    if (typeof val === 'boolean') attributes[ckaName(t)] = val;
  }
  const label = view.get(CKA.LABEL);
  const id = view.buf(CKA.ID) ?? Buffer.alloc(0);
  return { class: view.cls, keyType: view.keyType, label: typeof label === 'string' ? label : '', id: id.toString('hex'), attributes };
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
