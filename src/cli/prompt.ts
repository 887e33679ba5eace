// The one way kmu11 asks the operator something (loginHSM -hpswd, setAttribute's value,
// kmu11 passwd): on a terminal, key by key in raw mode (hidden answers are not echoed); with no
// terminal, the next line of standard input. Ctrl-C and Ctrl-D are answers too: interrupted,
// and no answer.
import { createInterface, emitKeypressEvents } from 'node:readline';
import { NoAnswer } from '../kmu/errors.js';
import type { CommandContext } from '../commands/types.js';
import { lineSource, type LineSource } from '../batch.js';

export { NoAnswer };

/** Ctrl-C at the question. */
export class Interrupted extends Error {
  constructor() {
    super('interrupted');
    this.name = 'Interrupted';
  }
}

export interface Key {
  name?: string;
  ctrl?: boolean;
  meta?: boolean;
  sequence?: string;
}
export type KeyPress = [text: string | undefined, key: Key | undefined];

type TtyIn = NodeJS.ReadStream & { isRaw?: boolean; setRawMode?(raw: boolean): void };

/**
 * Takes a terminal's key presses away from whoever listened (the shell's readline) and gives
 * them to `onKey` until the returned function puts the old listeners back.
 */
export function takeKeys(input: TtyIn, onKey: (...k: KeyPress) => void): () => void {
  emitKeypressEvents(input);
  const saved = input.listeners('keypress') as Array<(...a: unknown[]) => void>;
  input.removeAllListeners('keypress');
  input.on('keypress', onKey);
  const wasRaw = input.isRaw;
  input.setRawMode?.(true);
  input.resume();
  return () => {
    input.removeListener('keypress', onKey);
    for (const l of saved) input.on('keypress', l);
    if (!wasRaw) input.setRawMode?.(false);
    if (saved.length === 0) input.pause();
  };
}

/** Standard input (not a terminal) line by line, for the batch and the questions; close() lets the process end. */
export function stdinLines(): { next: LineSource; close(): void } {
  const rl = createInterface({ input: process.stdin, crlfDelay: Infinity, terminal: false });
  return { next: lineSource(rl[Symbol.asyncIterator]()), close: () => rl.close() };
}

export interface AskOptions {
  hidden: boolean;
  /** false: read `lines` even on a terminal (batch mode reads its own input line by line). */
  terminal?: boolean;
  input?: TtyIn;
  output?: NodeJS.WriteStream;
  /** Where answers come from when input is not a terminal. */
  lines?: LineSource;
  /** Keys typed before the question (type-ahead the shell held back). */
  pending?: KeyPress[];
}

/** What a command asks with (CommandContext.prompt): `env` names a variable that answers instead, when set. */
export function askOrEnv(question: string, p: Parameters<NonNullable<CommandContext['prompt']>>[1], o: AskOptions): Promise<string> {
  const value = p.env === undefined ? undefined : process.env[p.env];
  if (value !== undefined && value !== '') return Promise.resolve(value);
  return ask(question, o);
}

/** Asks `question`; resolves with the answer, rejects with NoAnswer or Interrupted. */
export async function ask(question: string, o: AskOptions): Promise<string> {
  const input = o.input ?? (process.stdin as TtyIn);
  const output = o.output ?? process.stdout;
  if (!input.isTTY || o.terminal === false) {
    if (!o.lines) throw new NoAnswer();
    const line = await o.lines();
    if (line === undefined) throw new NoAnswer();
    return line.replace(/\r$/, '');
  }
  return new Promise<string>((resolve, reject) => {
    let answer = '';
    let done = false;
    const finish = (error?: Error) => {
      if (done) return;
      done = true;
      release();
      output.write('\n');
      if (error) reject(error);
      else resolve(answer);
    };
    const onKey = (text: string | undefined, key: Key | undefined) => {
      if (done) return;
      if (key?.ctrl && key.name === 'c') return finish(new Interrupted());
      if (key?.ctrl && key.name === 'd') return answer === '' ? finish(new NoAnswer()) : undefined;
      if (key?.name === 'return' || key?.name === 'enter') return finish();
      if (key?.name === 'backspace') {
        if (answer === '') return;
        const chars = [...answer];
        chars.pop();
        answer = chars.join('');
        if (!o.hidden) output.write('\b \b');
        return;
      }
      if (key?.ctrl && key.name === 'u') {
        if (!o.hidden) output.write('\b \b'.repeat([...answer].length));
        answer = '';
        return;
      }
      // Printable text only: escape sequences (arrows) and other control keys are not part of an answer.
      if (text === undefined || key?.ctrl || key?.meta || /[\u0000-\u001f\u007f-\u009f]/.test(text)) return;
      answer += text;
      if (!o.hidden) output.write(text);
    };
    // Raw mode first, then the question: keys typed as soon as it shows are never echoed.
    const release = takeKeys(input, onKey);
    output.write(question);
    for (const [text, key] of o.pending?.splice(0) ?? []) onKey(text, key);
  });
}
