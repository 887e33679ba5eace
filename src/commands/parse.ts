// kmu's command syntax: `<command> [-flag value | -switch]...`, one command a line in the
// shell and in batch, or several in a row after `singlecmd`.
import { UsageError } from '../kmu/errors.js';
import { findCommand, type Command } from './index.js';
import { checkOptions } from './options.js';

export interface ParsedCommand {
  command: Command<any, any>;
  /** `-h`: show the syntax instead of running. */
  help: boolean;
  options: Record<string, unknown>;
}

/** Splits a shell or batch line into words; "double" and 'single' quotes group, \ escapes. */
export function splitWords(line: string): string[] {
  const words: string[] = [];
  let cur = '';
  let inWord = false;
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (quote) {
      if (ch === quote) quote = null;
      else if (ch === '\\' && quote === '"' && i + 1 < line.length) cur += line[++i];
      else cur += ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      inWord = true;
    } else if (ch === '\\' && i + 1 < line.length) {
      cur += line[++i];
      inWord = true;
    } else if (/\s/.test(ch)) {
      if (inWord) words.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += ch;
      inWord = true;
    }
  }
  if (quote) throw new UsageError(`unterminated ${quote} quote`);
  if (inWord) words.push(cur);
  return words;
}

function lookup(name: string): Command<any, any> {
  const command = findCommand(name);
  if (!command) throw new UsageError(`unknown command '${name}' (type help for the list)`);
  return command;
}

/**
 * Reads one command's flags from words[start...]. With `stopAtCommand` (singlecmd), a word
 * that is not a flag of this command but is a command name starts the next command.
 * Returns the parsed command and the index after it.
 */
function readCommand(words: string[], start: number, stopAtCommand: boolean): [ParsedCommand, number] {
  const command = lookup(words[start]!);
  const options: Record<string, unknown> = {};
  const seen = new Set<string>();
  // -h wins over every other flag (`genECCKeyPair -h -i 99` shows the syntax): the command's
  // words, up to the next command name in a singlecmd chain, are not checked.
  const takesValue = (word: string | undefined) => command.flags.some((f) => f.flag === word && f.parse);
  let end = start + 1;
  while (end < words.length && !(stopAtCommand && findCommand(words[end]!) && !takesValue(words[end - 1]))) end++;
  if (words.slice(start + 1, end).includes('-h')) return [{ command, help: true, options }, end];
  let i = start + 1;
  while (i < words.length) {
    const word = words[i]!;
    const spec = command.flags.find((f) => f.flag === word);
    if (!spec) {
      if (stopAtCommand && findCommand(word)) break;
      if (word.startsWith('-')) throw new UsageError(`${command.name} has no flag ${word} (see ${command.name} -h)`);
      throw new UsageError(
        stopAtCommand
          ? `${command.name}: unexpected '${word}': not a flag of ${command.name} nor a command (type help for the list)`
          : `${command.name}: unexpected '${word}' (flags start with -; see ${command.name} -h)`,
      );
    }
    if (seen.has(spec.flag)) throw new UsageError(`${command.name}: ${spec.flag} is given twice`);
    seen.add(spec.flag);
    if (!spec.parse) {
      options[spec.key] = true;
      i++;
      continue;
    }
    const value = words[i + 1];
    if (value === undefined) throw new UsageError(`${command.name}: ${spec.flag} needs a value ${spec.metavar ?? ''}`.trimEnd());
    options[spec.key] = spec.parse(value, spec.flag);
    i += 2;
  }
  const parsed = { command, help: false, options };
  checkOptions(parsed.command, options);
  return [parsed, i];
}

export function parseLine(line: string): ParsedCommand | null {
  const words = splitWords(line);
  if (words.length === 0) return null;
  const [parsed, end] = readCommand(words, 0, false);
  if (end !== words.length) throw new UsageError(`${parsed.command.name}: unexpected '${words[end]}'`);
  return parsed;
}

/** One command of a singlecmd chain: read, or the reason it could not be. */
export type ChainEntry = ParsedCommand | { error: UsageError };

/**
 * `singlecmd loginHSM -u CU ... genECCKeyPair -i 2 -l x`: every command on one line. A command
 * that cannot be read becomes its error, and reading goes on at the next command name, so the
 * chain runs as the same lines would in batch.
 */
export function parseSinglecmd(words: string[]): ChainEntry[] {
  if (words.length === 0) throw new UsageError('singlecmd needs at least one command');
  const out: ChainEntry[] = [];
  let i = 0;
  while (i < words.length) {
    try {
      const [parsed, next] = readCommand(words, i, true);
      out.push(parsed);
      i = next;
    } catch (e) {
      if (!(e instanceof UsageError)) throw e;
      out.push({ error: e });
      i++;
      while (i < words.length && !findCommand(words[i]!)) i++;
    }
  }
  return out;
}

/** What a password looks like in echoes, history and the process title. */
export const SECRET_MASK = '********';

/** Words with every secret flag's value (loginHSM -p) masked; across several commands for singlecmd. */
export function maskWords(words: string[]): string[] {
  const out = [...words];
  let command = findCommand(words[0] ?? '');
  for (let i = 0; i < out.length; i++) {
    const word = out[i]!;
    const spec = command?.flags.find((f) => f.flag === word);
    // An unknown command's flags are unknown: mask after -p, as loginHSM's.
    if (spec?.secret || (!command && word === '-p')) {
      if (i + 1 < out.length) out[++i] = SECRET_MASK;
      continue;
    }
    if (spec?.parse) {
      i++;
      continue;
    }
    command = findCommand(word) ?? command;
  }
  return out;
}

/** A line as splitWords reads it back: words with blanks, quotes or backslashes are double-quoted. */
export function formatLine(words: string[]): string {
  return words.map((w) => (/^[^\s"'\\]+$/.test(w) ? w : `"${w.replace(/["\\]/g, '\\$&')}"`)).join(' ');
}

/** The line with its secrets masked (unchanged when it has none); for the batch echo and the history. */
export function maskLine(line: string): string {
  let words: string[];
  try {
    words = splitWords(line);
  } catch {
    // Unbalanced quotes: everything after a -p goes.
    return line.replace(/(^|\s)-p(\s.*)?$/, `$1-p ${SECRET_MASK}`);
  }
  const masked = maskWords(words);
  return masked.every((w, i) => w === words[i]) ? line : formatLine(masked);
}
