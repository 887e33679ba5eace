// Property-based tests of the command parser (fast-check): any command formatted as a line
// parses back to the same command (or to the same usage error its flags give on their own),
// random token streams never crash the parser (only UsageError), secrets are always masked,
// and text for the terminal never carries a control character.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatLine, maskLine, maskWords, parseLine, parseSinglecmd, SECRET_MASK, splitWords } from '../src/commands/parse.js';
import { printable, printableLine } from '../src/cli/output.js';
import { COMMANDS } from '../src/commands/index.js';
import { checkOptions } from '../src/commands/options.js';
import { UsageError } from '../src/kmu/errors.js';

const RUNS = { numRuns: 400 };
const text = fc.oneof(fc.string({ unit: 'binary', maxLength: 40 }), fc.string({ unit: 'grapheme', maxLength: 20 }), fc.string({ maxLength: 20 }));

/** Values a flag is likely to meet: good ones, near misses and anything at all. */
const KNOWN: Record<string, string[]> = {
  '-i': ['1', '2', '15', 'prime256v1', 'P-521', '0', '16'],
  '-m': ['2048', '1024', '/tmp/m.txt'],
  '-l': ['signer', 'my key', 'é', '🔑', 'x'.repeat(127), 'x'.repeat(128)],
  '-id': ['k1', 'dup', ''],
  '-min_srv': ['1', '2', '32', '33'],
  '-u': ['4', '4,6', '2', '3,3', 'CU'],
  '-s': ['crypto_user', 'admin', ''],
  '-p': ['password', '-hpswd', ' '],
  '-o': ['1', '262145', '0', '9007199254740991', '9007199254740992'],
  '-k': ['1', '262146', '-1'],
  '-a': ['512', '0', '3', '9999', '1'],
  '-v': ['1', '0'],
  '-c': ['2', '3', '4', '5'],
  '-t': ['3', '16', '2'],
  '-sess': ['0', '1', '2'],
  '-kcv': ['0xbbb32a', 'bbb32a', 'zz'],
  '-r': ['0xdb', '0x00', 'db'],
  '-out': ['/tmp/out.pem', ''],
};

const commands = COMMANDS.filter((c) => c.name !== 'exit');
const command = fc.constantFrom(...commands);

/** A command with distinct flags in random order, each switch alone or valued flag with a value. */
const commandWords = command.chain((cmd) =>
  fc
    .shuffledSubarray([...cmd.flags], { minLength: 0 })
    .chain((flags) =>
      fc.tuple(...flags.map((f) => (f.parse ? fc.oneof(fc.constantFrom(...(KNOWN[f.flag] ?? ['x'])), text) : fc.constant(undefined)))).map((values) => ({
        cmd,
        pairs: flags.map((f, i) => [f, values[i]] as const),
      })),
    ),
);

/** What the flags give when read one by one, as the parser should: options, or the first usage error. */
function direct({ cmd, pairs }: { cmd: (typeof commands)[number]; pairs: ReadonlyArray<readonly [(typeof commands)[number]['flags'][number], string | undefined]> }) {
  try {
    const options: Record<string, unknown> = {};
    for (const [f, v] of pairs) options[f.key] = f.parse ? f.parse(v!, f.flag) : true;
    checkOptions(cmd, options);
    return { options };
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    return { error: e.message };
  }
}

function attempt<T>(fn: () => T): { value?: T; error?: string } {
  try {
    return { value: fn() };
  } catch (e) {
    if (!(e instanceof UsageError)) throw e; // anything else is a crash
    return { error: e.message };
  }
}

describe('parser properties', () => {
  it('splitWords(formatLine(words)) = words, for any words', () => {
    fc.assert(
      fc.property(fc.array(text, { maxLength: 12 }), (words) => {
        expect(splitWords(formatLine(words))).toEqual(words);
      }),
      RUNS,
    );
  });

  it('parse(format(cmd)) = cmd: the same options, or the same usage error the flags give alone', () => {
    fc.assert(
      fc.property(commandWords, (c) => {
        const words = [c.cmd.name, ...c.pairs.flatMap(([f, v]) => (v === undefined ? [f.flag] : [f.flag, v]))];
        const want = direct(c);
        const got = attempt(() => parseLine(formatLine(words)));
        if (want.error !== undefined) {
          expect(got.error).toBe(want.error);
        } else {
          expect(got.error).toBeUndefined();
          expect(got.value!.command.name).toBe(c.cmd.name);
          expect(splitWords(formatLine(words))).toEqual(words);
          expect(got.value!.options).toEqual(want.options);
          // The same command through singlecmd's reader.
          const single = attempt(() => parseSinglecmd(words));
          expect(single.value?.map((p) => p.options)).toEqual([want.options]);
        }
      }),
      RUNS,
    );
  });

  const token = fc.oneof(
    fc.constantFrom(...commands.map((c) => c.name), ...new Set(commands.flatMap((c) => c.flags.map((f) => f.flag))), '-h', '"', "'", '\\', '#', '--', '-', '\u0000', '\u001b[2J', '\u202e'),
    text,
  );
  const sep = fc.constantFrom(' ', '  ', '\t', ' \u000b', '\u00a0', '\u3000');

  it('random token streams never crash the parser: a command, nothing, or a UsageError', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(token, sep), { maxLength: 16 }), (parts) => {
        const line = parts.map(([t, s]) => t + s).join('');
        attempt(() => parseLine(line));
        attempt(() => parseSinglecmd(parts.map(([t]) => t)));
        expect(typeof maskLine(line)).toBe('string');
        expect(maskWords(parts.map(([t]) => t))).toHaveLength(parts.length);
      }),
      { numRuns: 1000 },
    );
  });

  it('a loginHSM password is masked wherever -p sits, in lines and in singlecmd words', () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1, maxLength: 30 }).filter((p) => p.trim() !== '' && p !== SECRET_MASK),
        fc.shuffledSubarray(['-u CU', '-s crypto_user'], { minLength: 0 }),
        fc.array(fc.constantFrom('findKey', 'findKey -l x', 'logoutHSM', 'genECCKeyPair -i 2 -l k'), { maxLength: 3 }),
        (password, before, after) => {
          const words = ['loginHSM', ...before.flatMap((w) => w.split(' ')), '-p', password];
          const line = formatLine(words);
          expect(splitWords(maskLine(line))).toEqual([...words.slice(0, -1), SECRET_MASK]);
          const single = [...words, ...after.flatMap((w) => w.split(' '))];
          const masked = maskWords(single);
          expect(masked[words.length - 1]).toBe(SECRET_MASK);
          expect(masked.filter((w, i) => w !== single[i])).toEqual([SECRET_MASK]);
        },
      ),
      RUNS,
    );
  });

  it('terminal text never carries a control, bidi or zero-width character; a line never a line break', () => {
    const unprintable = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200b-\u200f\u202a-\u202e\u2028\u2029\u2060-\u2069\ufeff]/;
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 60 }), (s) => {
        expect(printable(s)).not.toMatch(unprintable);
        expect(printableLine(s)).not.toMatch(/[\n\t]/);
        expect(printableLine(s)).not.toMatch(unprintable);
      }),
      { numRuns: 2000 },
    );
  });
});
