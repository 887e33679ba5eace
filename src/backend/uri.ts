// PKCS#11 URIs (RFC 7512): how kmu11 names a token or a key for other tools (p11tool, OpenSSL's
// pkcs11 engine/provider), and how an operator may choose a token (--token 'pkcs11:token=…').
import { SetupError } from '../kmu/errors.js';

/** Path attributes kmu11 understands when choosing a token. */
const TOKEN_ATTRS = ['token', 'serial', 'manufacturer', 'model', 'slot-id', 'slot-description', 'slot-manufacturer', 'library-manufacturer', 'library-description'] as const;
/** Path attributes that name an object: allowed (and ignored) in a token choice. */
const OBJECT_ATTRS = ['object', 'id', 'type'];

const UNRESERVED = /[A-Za-z0-9\-._~]/;

/** Percent-encodes every byte outside RFC 3986's unreserved set (CKA_ID: every byte). */
function pct(value: string | Buffer, all = false): string {
  const bytes = Buffer.isBuffer(value) ? value : Buffer.from(value, 'utf8');
  let out = '';
  for (const b of bytes) {
    const c = String.fromCharCode(b);
    out += !all && b < 0x80 && UNRESERVED.test(c) ? c : '%' + b.toString(16).padStart(2, '0');
  }
  return out;
}

export interface UriTokenInfo {
  label: string;
  manufacturerID: string;
  model: string;
  serialNumber: string;
}

function tokenUri(t: UriTokenInfo): string {
  return `pkcs11:model=${pct(t.model)};manufacturer=${pct(t.manufacturerID)};serial=${pct(t.serialNumber)};token=${pct(t.label)}`;
}

export function keyUri(t: UriTokenInfo, key: { label?: string; id?: Buffer; type: 'public' | 'private' | 'secret' }): string {
  let uri = tokenUri(t);
  if (key.id && key.id.length) uri += `;id=${pct(key.id, true)}`;
  if (key.label !== undefined) uri += `;object=${pct(key.label)}`;
  return `${uri};type=${key.type}`;
}

/** A `pkcs11:` URI's path attributes, decoded; throws SetupError naming what is wrong. */
export function parseTokenUri(uri: string): Record<string, string> {
  if (!uri.startsWith('pkcs11:')) throw new SetupError(`not a PKCS#11 URI: ${uri}`);
  const [path] = uri.slice(7).split('?', 1);
  const out: Record<string, string> = {};
  for (const part of path!.split(';')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    if (eq <= 0) throw new SetupError(`PKCS#11 URI ${uri}: "${part}" is not name=value`);
    const name = part.slice(0, eq).toLowerCase();
    if (!(TOKEN_ATTRS as readonly string[]).includes(name) && !OBJECT_ATTRS.includes(name))
      throw new SetupError(`PKCS#11 URI ${uri}: unknown attribute "${name}" (a token is chosen by ${TOKEN_ATTRS.join(', ')})`);
    if (name in out) throw new SetupError(`PKCS#11 URI ${uri}: "${name}" given twice`);
    let value: string;
    try {
      value = decodeURIComponent(part.slice(eq + 1));
    } catch {
      throw new SetupError(`PKCS#11 URI ${uri}: bad percent-encoding in "${part}"`);
    }
    out[name] = value;
  }
  return out;
}

export interface TokenCandidate {
  slotId: number;
  label: string;
  manufacturerID: string;
  model: string;
  serialNumber: string;
  slotDescription: string;
  slotManufacturer: string;
}

/** Whether a token matches every token attribute of a parsed URI. */
export function tokenMatches(attrs: Record<string, string>, t: TokenCandidate, library: { manufacturerID: string; description: string }): boolean {
  const have: Record<string, string> = {
    token: t.label,
    serial: t.serialNumber,
    manufacturer: t.manufacturerID,
    model: t.model,
    'slot-id': String(t.slotId),
    'slot-description': t.slotDescription,
    'slot-manufacturer': t.slotManufacturer,
    'library-manufacturer': library.manufacturerID,
    'library-description': library.description,
  };
  return Object.entries(attrs).every(([k, v]) => !(k in have) || have[k]!.trim() === v.trim());
}
