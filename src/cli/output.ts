// Where results go: kmu's text on stdout (reasons and warnings on stderr), or one JSON object
// a command with --json.
import { hexCode, returnCodeText } from '../kmu/returnCodes.js';
import type { Output } from '../batch.js';
import { formatSyntax, formatText, missingFlagLines, type MissingFlag, type Profile } from './text.js';

export type { Profile } from './text.js';

/** The shell's prompt, also echoed before each batch line: kmu 3.x prints two spaces after the colon. */
export function promptOf(profile: Profile): string {
  return profile === 'pages' ? 'Command: ' : 'Command:  ';
}

// Characters that move the cursor, recolour or reorder the terminal, or hide text: never
// written raw, whatever a batch file, an argument or another tool's label holds.
const UNPRINTABLE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200b-\u200f\u202a-\u202e\u2028\u2029\u2060-\u2069\ufeff]|\p{Cs}/gu;
const escapeChar = (c: string) => {
  const n = c.codePointAt(0)!;
  return n < 0x100 ? `\\x${n.toString(16).padStart(2, '0')}` : `\\u{${n.toString(16)}}`;
};

/** Text for the terminal: controls and invisible characters as \xHH or \u{HHHH}; tabs and line breaks kept. */
export function printable(text: string): string {
  return text.replace(UNPRINTABLE, escapeChar);
}

/** One line for the terminal (an error, an echo): line breaks escaped too. */
export function printableLine(text: string): string {
  return printable(text).replace(/[\n\t]/g, escapeChar);
}

export function textOutput(profile: Profile = 'kmu3', stdout = process.stdout, stderr = process.stderr): Output {
  return {
    result(r) {
      const err = (r.data as { error?: { usage?: string; detail?: string; missing?: MissingFlag[] } }).error;
      // kmu's own lines for missing flags go to stdout, as kmu prints them; kmu11's wording to stderr.
      if (err?.missing) stdout.write(missingFlagLines(err.missing).join('\n') + '\n');
      // Other bad input is one line on stderr: nothing reached the token, so no kmu status lines.
      if (err?.usage) return void stderr.write(`Error: ${printableLine(err.usage)}\n`);
      const text = formatText(r, profile);
      if (text) stdout.write(printable(text) + '\n');
      if (err?.detail) stderr.write(`Error: ${printableLine(err.detail)}\n`);
      for (const w of r.warnings) stderr.write(printable(w) + '\n');
    },
    syntax(_command, syntax) {
      stdout.write(formatSyntax(syntax) + '\n');
    },
    echo(line) {
      stdout.write(`${promptOf(profile)}${printableLine(line)}\n`);
    },
    between() {
      stdout.write('\n');
    },
    asked(question, answer) {
      stdout.write(`${printable(question)}${printableLine(answer ?? '')}\n`);
    },
    fatal(message) {
      stderr.write(`kmu11: ${printable(message)}\n`);
    },
  };
}

/** JSON text with the characters above as \uXXXX (JSON.stringify escapes only C0 controls). */
const JSON_UNPRINTABLE = /[\u007f-\u009f\u061c\u200b-\u200f\u202a-\u202e\u2028\u2029\u2060-\u2069\ufeff]/g;
function jsonLine(o: unknown): string {
  return JSON.stringify(o).replace(JSON_UNPRINTABLE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export function jsonOutput(stdout = process.stdout): Output {
  const emit = (o: unknown) => stdout.write(jsonLine(o) + '\n');
  return {
    result(r) {
      const { error, ...data } = r.data as { error?: unknown };
      emit({
        command: r.command,
        op: r.op,
        code: hexCode(r.code),
        text: returnCodeText(r.code) ?? null,
        ...(error ? { error } : {}),
        warnings: r.warnings,
        result: data,
      });
    },
    syntax(command, syntax) {
      emit({ command, code: hexCode(0), text: returnCodeText(0), warnings: [], result: { syntax } });
    },
    echo() {},
    between() {},
    asked() {},
    fatal(message) {
      emit({ command: null, code: null, error: { fatal: message } });
    },
  };
}
