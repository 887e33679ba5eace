// The interactive shell: prompt "Command:  " ("Command: " with --profile pages), history (kept
// in $KMU11_HOME/history), tab completion of command names and of each command's flags.
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import { COMMANDS, findCommand } from '../commands/index.js';
import { ensureHome, type ConfigOverrides } from '../backend/index.js';
import { KmuError, SetupError } from '../kmu/errors.js';
import { RC } from '../kmu/returnCodes.js';
import type { CommandRunner } from '../kmu11.js';
import { maskLine, parseLine } from '../commands/parse.js';
import { askOrEnv, Interrupted, takeKeys, type KeyPress } from './prompt.js';
import { runParsed, usageFailure, type Outcome, type Output } from '../batch.js';

const HISTORY_SIZE = 1000;

export function complete(line: string): [string[], string] {
  const words = line.split(/\s+/);
  const last = words[words.length - 1] ?? '';
  if (words.length <= 1) {
    const names = COMMANDS.map((c) => c.name).filter((n) => n.startsWith(last));
    return [names, last];
  }
  const command = findCommand(words[0]!);
  if (!command) return [[], last];
  const flags = ['-h', ...command.flags.map((f) => f.flag)].filter((f) => f.startsWith(last) && !words.slice(1, -1).includes(f));
  return [flags, last];
}

function historyFile(overrides: ConfigOverrides): string | undefined {
  try {
    return join(ensureHome(overrides), 'history');
  } catch {
    return undefined; // history is a convenience
  }
}

/** Why a command stopped when the operator pressed Ctrl-C (the command rolls back what it made). */
function interruption(): KmuError {
  return new KmuError(RC.GENERAL_ERROR, { detail: 'interrupted by Ctrl-C; nothing was made' });
}

/**
 * Reads commands until exit or Ctrl-D at an empty prompt. While a command runs the shell holds
 * the keys: Ctrl-C aborts the command (CommandContext.signal), anything else typed meanwhile is
 * given back to the line editor afterwards. Ctrl-C at the prompt clears the line.
 */
export async function runShell(runner: CommandRunner, overrides: ConfigOverrides, out: Output, prompt: string): Promise<boolean> {
  const file = historyFile(overrides);
  let history: string[] = [];
  try {
    if (file) {
      const kept = readFileSync(file, 'utf8').split('\n').filter(Boolean);
      // A history written before passwords were masked is rewritten masked.
      const masked = kept.map(maskLine);
      if (masked.some((l, i) => l !== kept[i])) writeFileSync(file, masked.map((l) => l + '\n').join(''), { mode: 0o600 });
      history = masked.reverse().slice(0, HISTORY_SIZE);
    }
  } catch {
    // no history yet
  }
  const input = process.stdin;
  const pending: KeyPress[] = [];
  let running: AbortController | undefined;
  runner.setPrompt((question, opts) =>
    askOrEnv(question, opts, { hidden: opts.hidden, input, output: process.stdout, pending }).catch((e: unknown) => {
      if (!(e instanceof Interrupted)) throw e;
      running?.abort('Ctrl-C');
      throw interruption();
    }),
  );
  const rl: Interface = createInterface({
    input,
    output: process.stdout,
    terminal: true,
    completer: complete,
    history,
    historySize: HISTORY_SIZE,
    prompt,
  });
  let allOk = true;
  let busy = false;
  let ended = false;
  let settle!: (ok: boolean) => void;
  const done = new Promise<boolean>((resolve) => (settle = resolve));
  const finish = () => {
    if (!ended) {
      ended = true;
      rl.close();
    }
    settle(allOk);
  };

  rl.on('SIGINT', () => {
    const r = rl as unknown as { clearLine?(): void };
    if (r.clearLine) r.clearLine();
    else process.stdout.write('\n');
    rl.prompt();
  });
  rl.on('close', () => {
    if (ended) return;
    ended = true; // Ctrl-D at an empty prompt, or the terminal went away
    process.stdout.write('\n');
    if (!busy) settle(allOk);
  });
  rl.on('line', (raw: string) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return rl.prompt();
    busy = true;
    const masked = maskLine(line);
    const kept = (rl as unknown as { history?: string[] }).history;
    if (masked !== line && kept?.[0] === raw) kept[0] = masked;
    const controller = new AbortController();
    running = controller;
    const release = takeKeys(input, (text, key) => {
      if (key?.ctrl && key.name === 'c') {
        process.stdout.write('^C\n');
        controller.abort('Ctrl-C');
      } else pending.push([text, key]);
    });
    void runLine(runner, line, masked, file, out, controller.signal).then((outcome) => {
      running = undefined;
      release();
      busy = false;
      allOk &&= outcome.ok;
      if (outcome.exit || ended) return finish();
      out.between();
      rl.prompt();
      // Type-ahead goes to the line editor as if typed now (an Enter in it runs the next line).
      for (const [text, key] of pending.splice(0)) input.emit('keypress', text, key);
    });
  });
  rl.prompt();
  return done;
}

async function runLine(
  runner: CommandRunner,
  line: string,
  masked: string,
  file: string | undefined,
  out: Output,
  signal: AbortSignal,
): Promise<Outcome> {
  if (file) {
    try {
      appendFileSync(file, masked + '\n', { mode: 0o600 });
    } catch {
      // history is a convenience
    }
  }
  try {
    const parsed = parseLine(line);
    return parsed ? await runParsed(runner, parsed, out, { signal }) : { ok: true, exit: false };
  } catch (e) {
    if (e instanceof SetupError) {
      out.fatal(e.message);
      return { ok: false, exit: false };
    }
    return usageFailure(out, e);
  }
}
