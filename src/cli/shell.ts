// The interactive shell: prompt "Command:  " ("Command: " with --profile pages), history (kept
// in $KMU11_HOME/history), tab completion of command names and of each command's flags.
import { appendFileSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import { COMMANDS, findCommand } from '../commands/index.js';
import { resolveConfig, type ConfigOverrides } from '../backend/config.js';
import { SetupError } from '../kmu/errors.js';
import type { KmuSession } from '../kmu11.js';
import type { Output } from './output.js';
import { parseLine } from './parse.js';
import { runParsed, usageFailure } from './run.js';

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
    const home = resolveConfig(overrides).home;
    mkdirSync(home, { recursive: true, mode: 0o700 });
    return join(home, 'history');
  } catch {
    return undefined; // history is a convenience
  }
}

/** Asks on the shell's own line reader without echoing what is typed (loginHSM -hpswd). */
function hiddenQuestion(rl: Interface, question: string): Promise<string> {
  const r = rl as unknown as { _writeToOutput(s: string): void };
  const write = r._writeToOutput;
  return new Promise((resolve) => {
    r._writeToOutput = (s: string) => {
      if (s.includes(question)) write.call(rl, question);
    };
    rl.question(question, (answer) => {
      r._writeToOutput = write;
      process.stdout.write('\n');
      resolve(answer);
    });
  });
}

export async function runShell(session: KmuSession, overrides: ConfigOverrides, out: Output, prompt: string): Promise<boolean> {
  const file = historyFile(overrides);
  let history: string[] = [];
  try {
    if (file) history = readFileSync(file, 'utf8').split('\n').filter(Boolean).reverse().slice(0, HISTORY_SIZE);
  } catch {
    // no history yet
  }
  session.setPrompt((question, { hidden }) =>
    hidden ? hiddenQuestion(rl, question) : new Promise<string>((resolve) => rl.question(question, resolve)),
  );
  const rl: Interface = createInterface({
    input: process.stdin,
    output: process.stdout,
    terminal: true,
    completer: complete,
    history,
    historySize: HISTORY_SIZE,
    prompt,
  });
  let allOk = true;
  rl.prompt();
  for await (const raw of rl) {
    const line = raw.trim();
    if (line !== '' && !line.startsWith('#')) {
      if (file) {
        try {
          appendFileSync(file, line + '\n', { mode: 0o600 });
        } catch {
          // history is a convenience
        }
      }
      let outcome;
      try {
        const parsed = parseLine(line);
        outcome = parsed ? await runParsed(session, parsed, out) : { ok: true, exit: false };
      } catch (e) {
        if (e instanceof SetupError) {
          out.fatal(e.message);
          outcome = { ok: false, exit: false };
        } else outcome = usageFailure(out, e);
      }
      allOk &&= outcome.ok;
      if (outcome.exit) break;
      out.between();
    }
    rl.prompt();
  }
  rl.close();
  return allOk;
}
