// Readers for kmu flag values. Each throws UsageError with one clear line naming the flag.
import { UsageError } from './errors.js';
import { findCurve, type Curve } from './curves.js';

/** CloudHSM's label and id limit (bytes of UTF-8). */
const MAX_LABEL_BYTES = 127;

export function integer(min: number, max: number) {
  return (text: string, flag: string): number => {
    if (!/^[0-9]+$/.test(text)) throw new UsageError(`${flag} takes a whole number from ${min} to ${max}, not '${text}'`);
    const n = Number(text);
    if (n < min || n > max) throw new UsageError(`${flag} must be from ${min} to ${max}, not ${text}`);
    return n;
  };
}

/** A kmu handle: a positive integer. */
export function handle(text: string, flag: string): number {
  if (!/^[0-9]+$/.test(text) || Number(text) < 1 || !Number.isSafeInteger(Number(text)))
    throw new UsageError(`${flag} takes a key handle (a positive whole number), not '${text}'`);
  return Number(text);
}

// Labels and IDs (CloudHSM: "a string", at most 127 characters; silent on which characters).
// kmu11 is strict: text that prints as what it is. Refused: C0 and C1 controls and DEL;
// bidirectional overrides, embeddings, isolates and marks (they reorder what is shown); line
// and paragraph separators; other invisible format characters (zero-width space, word joiner,
// soft hyphen, BOM...) except the zero-width joiner and non-joiner that emoji and some scripts
// need; unpaired surrogates and noncharacters; and text with nothing visible in it.
const LONE_SURROGATE = /\p{Cs}/u;
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/u;
const BIDI = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/u;
const SEPARATOR = /[\p{Zl}\p{Zp}]/u;
const INVISIBLE = /[^\P{Cf}\u200c\u200d]/u;
const NONCHARACTER = /[\ufdd0-\ufdef\ufffe\uffff\u{1fffe}\u{1ffff}\u{2fffe}\u{2ffff}\u{10fffe}\u{10ffff}]/u;
const VISIBLE = /[^\p{White_Space}\p{Cf}\p{M}\u3164\u115f\u1160\uffa0\u2800]/u;

function checkText(text: string, flag: string, what: string): string {
  // argv and stdin are decoded as UTF-8; invalid bytes arrive as U+FFFD.
  if (text.includes('\uFFFD') || LONE_SURROGATE.test(text)) throw new UsageError(`${flag}: the ${what} is not valid UTF-8`);
  if (CONTROL.test(text)) throw new UsageError(`${flag}: the ${what} contains a control character`);
  if (BIDI.test(text)) throw new UsageError(`${flag}: the ${what} contains a bidirectional control character`);
  if (SEPARATOR.test(text)) throw new UsageError(`${flag}: the ${what} contains a line or paragraph separator`);
  if (INVISIBLE.test(text)) throw new UsageError(`${flag}: the ${what} contains an invisible formatting character`);
  if (NONCHARACTER.test(text)) throw new UsageError(`${flag}: the ${what} contains a Unicode noncharacter`);
  if (!VISIBLE.test(text)) throw new UsageError(`${flag}: the ${what} has no visible character`);
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > MAX_LABEL_BYTES) throw new UsageError(`${flag}: the ${what} is ${bytes} bytes long; at most ${MAX_LABEL_BYTES} are allowed`);
  return text;
}

export function label(text: string, flag: string): string {
  if (text === '') throw new UsageError(`${flag} needs a non-empty label`);
  return checkText(text, flag, 'label');
}

export function keyId(text: string, flag: string): string {
  if (text === '') throw new UsageError(`${flag} needs a non-empty key ID`);
  return checkText(text, flag, 'key ID');
}

export function curve(text: string, flag: string): Curve {
  const c = findCurve(text);
  if (!c) throw new UsageError(`${flag} takes an EC curve id from 1 to 15 (or a name such as prime256v1), not '${text}'`);
  return c;
}

/** -u 4,6: distinct CloudHSM user ids. */
export function userIds(text: string, flag: string): number[] {
  const parts = text.split(',');
  const ids: number[] = [];
  for (const p of parts) {
    if (!/^[0-9]+$/.test(p) || Number(p) < 1 || Number(p) > 0xffff)
      throw new UsageError(`${flag} takes a comma-separated list of user ids such as 4,6, not '${text}'`);
    if (ids.includes(Number(p))) throw new UsageError(`${flag} lists user ${p} twice`);
    ids.push(Number(p));
  }
  return ids;
}

/** A user name or user type: the label rules (without their length limit). */
export function text(what: string) {
  return (value: string, flag: string): string => {
    if (value === '') throw new UsageError(`${flag} needs a ${what}`);
    if (value.includes('\uFFFD') || LONE_SURROGATE.test(value)) throw new UsageError(`${flag}: the ${what} is not valid UTF-8`);
    if (CONTROL.test(value) || BIDI.test(value) || SEPARATOR.test(value) || INVISIBLE.test(value))
      throw new UsageError(`${flag}: the ${what} contains a control or invisible character`);
    return value;
  };
}

/** Error2String -r 0xdb: the 0x is required, as the page says. */
export function responseCode(value: string, flag: string): number {
  if (!/^0x[0-9a-fA-F]{1,8}$/.test(value)) throw new UsageError(`${flag} takes a hexadecimal error code with 0x, such as 0xdb, not '${value}'`);
  return parseInt(value.slice(2), 16);
}
