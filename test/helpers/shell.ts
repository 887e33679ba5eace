// Drives the interactive shell on a real terminal (util-linux `script` gives it a pty) the way
// an operator does: type a line, wait for the next "Command: " prompt, read what came between.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { CLI } from './cli.js';

export interface Shell {
  /**
   * Types a line; resolves with the output lines it produced (prompt and echo removed), once the
   * shell shows `until` (its "Command: " prompt, or a question the command asks).
   */
  send(line: string, until?: string): Promise<string[]>;
  /** Types `keys` as they are (no Enter added: "\x03" is Ctrl-C, "\x04" Ctrl-D); resolves with the output once `until` shows. */
  press(keys: string, until?: string): Promise<string>;
  /** Resolves with the exit status once the program has ended (after Ctrl-D, exit…). */
  closed(): Promise<number | null>;
  /** Everything the terminal showed so far (carriage returns removed). */
  screen(): string;
  /** Types exit and waits for the program to end; resolves with its exit status. */
  exit(): Promise<number | null>;
}

const PROMPT = 'Command: ';

/** `args` run another mode on the terminal (kmu11 passwd …); `first` is what to wait for before resolving; `cwd` the shell's directory. */
export async function openShell(env: NodeJS.ProcessEnv, args: string[] = [], first = PROMPT, cwd?: string): Promise<Shell> {
  const command = [process.execPath, CLI, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const child: ChildProcessWithoutNullStreams = spawn('script', ['-qfec', command, '/dev/null'], {
    env: { ...process.env, ...env, TERM: 'dumb' },
    cwd,
  });
  const closed = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  let buffer = '';
  let waiter: (() => void) | undefined;
  child.stdout.on('data', (d: Buffer) => {
    buffer += d.toString('utf8').replace(/\r/g, '');
    waiter?.();
  });
  const untilPrompt = (from: number, marker = PROMPT) =>
    new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no prompt after:\n${buffer.slice(from)}`)), 60_000);
      const check = () => {
        const i = buffer.lastIndexOf(marker);
        if (i >= from && buffer.trimEnd().endsWith(marker.trimEnd())) {
          clearTimeout(timer);
          waiter = undefined;
          resolve(buffer.slice(from, i));
        }
      };
      waiter = check;
      check();
    });
  await untilPrompt(0, first);
  return {
    async press(keys, until = PROMPT) {
      const from = buffer.length;
      child.stdin.write(keys);
      return untilPrompt(from, until);
    },
    closed: () => closed,
    screen: () => buffer,
    async send(line, until) {
      const from = buffer.length;
      child.stdin.write(line + '\n');
      const text = await untilPrompt(from, until);
      const lines = text.split('\n');
      // The terminal echoes the typed line first.
      if (lines[0]?.trim() === line.trim()) lines.shift();
      return lines;
    },
    exit() {
      child.stdin.write('exit\n');
      child.stdin.end();
      return closed;
    },
  };
}
