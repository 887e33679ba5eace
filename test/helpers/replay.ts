// Replays page examples through the three ways operators run kmu11, one "driver" each: batch
// (standard input from a pipe, fed a line at a time), singlecmd (one process a command) and the
// interactive shell on a real terminal. Each returns the lines one command printed.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { expect } from 'vitest';
import { CLI, LOGIN, kmu11 } from './cli.js';
import { openShell } from './shell.js';

export type Mode = 'batch' | 'singlecmd' | 'shell';
export const MODES: readonly Mode[] = ['batch', 'singlecmd', 'shell'];

export interface Driver {
  /** Runs one command line; `answer` is typed when the command asks (setAttribute without -v). */
  run(line: string, answer?: { question: string; value: string }): Promise<string[]>;
  close(): Promise<void>;
}

/** A command that prints a fixed line, sent after each batch line to know where its output ends. */
const MARKER = 'Error2String -r 0x00';
const MARKER_TEXT = 'Error Code 0 maps to HSM Return: SUCCESS';

async function batchDriver(env: NodeJS.ProcessEnv, cwd: string): Promise<Driver> {
  const child: ChildProcessWithoutNullStreams = spawn(process.execPath, [CLI], { env: { ...process.env, ...env }, cwd });
  let buffer = '';
  let waiter: (() => void) | undefined;
  child.stdout.on('data', (d: Buffer) => {
    buffer += d.toString('utf8');
    waiter?.();
  });
  const closed = new Promise((r) => child.on('close', r));
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
  const until = (from: number, text: string) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`batch: no '${text}' after:\n${buffer.slice(from)}\n${stderr}`)), 60_000);
      const check = () => {
        if (buffer.indexOf(text, from) >= 0) {
          clearTimeout(timer);
          waiter = undefined;
          resolve();
        }
      };
      waiter = check;
      check();
    });
  return {
    async run(line, answer) {
      const from = buffer.length;
      if (line === 'exit') {
        child.stdin.end('exit\n');
        await closed;
        return buffer.slice(from).split('\n').slice(1);
      }
      child.stdin.write(`${line}\n${answer ? answer.value + '\n' : ''}${MARKER}\n`);
      await until(from, MARKER_TEXT);
      const text = buffer.slice(from);
      const lines = text.split('\n');
      // Our command's echo, its output, then the marker's echo.
      const start = lines.findIndex((l) => /^Command: +/.test(l));
      const end = lines.findIndex((l, i) => i > start && l.replace(/^Command: +/, '') === MARKER && l.startsWith('Command:'));
      return lines.slice(start + 1, end);
    },
    async close() {
      if (!child.stdin.writableEnded) child.stdin.end('exit\n');
      await closed;
    },
  };
}

/** Each command in its own process, after a loginHSM (unless it is one). */
function singlecmdDriver(env: NodeJS.ProcessEnv, cwd: string): Driver {
  return {
    async run(line) {
      const words = line.split(/\s+/).filter(Boolean);
      const logs = words[0] !== 'loginHSM';
      const r = kmu11(['singlecmd', ...(logs ? LOGIN : []), ...words], { env, cwd });
      const lines = r.stdout.split('\n');
      // loginHSM's own lines end with its cluster status.
      return logs ? lines.slice(lines.findIndex((l) => l.startsWith('Node id')) + 1) : lines;
    },
    async close() {},
  };
}

async function shellDriver(env: NodeJS.ProcessEnv, cwd: string): Promise<Driver> {
  const sh = await openShell(env, [], undefined, cwd);
  let exited = false;
  return {
    async run(line, answer) {
      if (line === 'exit') {
        exited = true;
        expect(await sh.exit()).toBe(0);
        return [];
      }
      // stdout and stderr share the terminal: kmu11's reasons (stderr, at the line start) are not kmu's lines.
      const own = (ls: string[]) => ls.filter((l) => !/^(Error|Warning): /.test(l));
      if (!answer) return own(await sh.send(line));
      const asked = await sh.send(line, answer.question);
      // The typed answer ends the question's line, as the page shows ("...(0 or 1):1").
      const rest = await sh.send(answer.value);
      const merged = [...asked];
      merged[merged.length - 1] = `${merged[merged.length - 1] ?? ''}${answer.question}${answer.value}`;
      return own([...merged, ...rest]);
    },
    async close() {
      if (!exited) await sh.exit();
    },
  };
}

/** A driver for `mode`; `login`: log in first (batch, shell) or before each command (singlecmd). */
export async function openDriver(mode: Mode, env: NodeJS.ProcessEnv, cwd: string, login: boolean): Promise<Driver> {
  if (mode === 'singlecmd') return singlecmdDriver(env, cwd);
  const d = mode === 'batch' ? await batchDriver(env, cwd) : await shellDriver(env, cwd);
  if (login) await d.run(LOGIN.join(' '));
  return d;
}

/** Lines as the replay compares them, besides normalize(): key counts and dump sizes masked. */
export function maskCounts(lines: string[]): string[] {
  return lines.map((l) =>
    l
      .replace(/(Total number of keys present:?) \d+/, '$1 N')
      .replace(/from start index 0::\d+/, 'from start index 0::N')
      .replace(/size \d+ attr cnt \d+/, 'size N attr cnt N')
      // A new secret key's handle, and a wrapped key's length (it depends on the key and the token).
      .replace(/Key Handle: \d+/, 'Key Handle: H')
      .replace(/^(\s*Wrapped Key written to file .*length )\d+$/, '$1N'),
  );
}

/** Handles a command's output names as new: a pair's two, or a symmetric key's one. */
export function newHandles(lines: string[]): string[] {
  const text = lines.join('\n');
  const pair = /public key handle: (\d+)\s+private key handle: (\d+)/.exec(text);
  if (pair) return [pair[1]!, pair[2]!];
  const one = /Key Handle: (\d+)/.exec(text);
  return one ? [one[1]!] : [];
}
