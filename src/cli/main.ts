#!/usr/bin/env node
// kmu11 / key_mgmt_util: the interactive shell on a terminal, batch from a pipe, or
// `singlecmd <command> [flags] [<command> [flags] …]`, as key_mgmt_util has them.
import { SetupError, UsageError } from '../kmu/errors.js';
import { KmuSession } from '../kmu11.js';
import { jsonOutput, textOutput, type Output } from './output.js';
import { runBatchLines } from './parallel.js';
import { parseSinglecmd } from './parse.js';
import { runParsed, usageFailure } from './run.js';
import { runShell } from './shell.js';
import { runInfo, runPasswd } from './tools.js';

interface Globals {
  json: boolean;
  /** Batch lines in flight at once (--parallel N); 1 is the serial batch. */
  parallel: number;
  module?: string;
  token?: string;
  home?: string;
}

const USAGE = `usage: kmu11 [--json] [--parallel <n>] [--module <path>] [--token <label>] [--home <dir>] [singlecmd <command> [flags]… | info | passwd <user>]
  no mode on a terminal: the interactive shell (prompt "Command: ")
  no mode with standard input from a pipe or file: one command a line (--parallel n: independent lines on n sessions at once)`;

function readGlobals(argv: string[]): [Globals, string[]] {
  const g: Globals = { json: false, parallel: 1 };
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--json') g.json = true;
    else if (a === '--parallel') {
      const v = argv[++i];
      if (v === undefined || !/^[1-9][0-9]{0,2}$/.test(v) || Number(v) > 64)
        throw new UsageError('--parallel needs a number of sessions from 1 to 64');
      g.parallel = Number(v);
    }    else if (a === '--module' || a === '--token' || a === '--home') {
      const v = argv[++i];
      if (v === undefined || v === '') throw new UsageError(`${a} needs a value`);
      g[a.slice(2) as 'module' | 'token' | 'home'] = v;
    } else if (a.startsWith('--')) throw new UsageError(`unknown option ${a}\n${USAGE}`);
    else break;
  }
  return [g, argv.slice(i)];
}

async function runBatch(session: KmuSession, out: Output, parallel: number): Promise<boolean> {
  const { createInterface } = await import('node:readline');
  const rl = createInterface({ input: process.stdin, crlfDelay: Infinity, terminal: false });
  try {
    return await runBatchLines(session, rl, out, parallel);
  } finally {
    rl.close();
  }
}

async function runSinglecmd(session: KmuSession, words: string[], out: Output): Promise<boolean> {
  let commands;
  try {
    commands = parseSinglecmd(words);
  } catch (e) {
    usageFailure(out, e);
    return false;
  }
  let allOk = true;
  for (const parsed of commands) {
    const outcome = await runParsed(session, parsed, out);
    allOk &&= outcome.ok;
    if (outcome.exit) break;
  }
  return allOk;
}

export async function main(argv: string[]): Promise<number> {
  let globals: Globals;
  let rest: string[];
  const early = textOutput();
  try {
    [globals, rest] = readGlobals(argv);
  } catch (e) {
    early.fatal((e as Error).message);
    return 2;
  }
  const out = globals.json ? jsonOutput() : textOutput();
  const overrides = { module: globals.module, token: globals.token, home: globals.home };
  const mode = rest[0];
  if (mode === '--help' || mode === '-h') {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  const session = new KmuSession(overrides);
  try {
    if (mode === 'info') return await runInfo(session, globals.json);
    if (mode === 'passwd') return await runPasswd(overrides, rest.slice(1));
    if (mode === 'singlecmd') return (await runSinglecmd(session, rest.slice(1), out)) ? 0 : 1;
    if (mode !== undefined) {
      out.fatal(`unknown mode '${mode}'\n${USAGE}`);
      return 2;
    }
    if (process.stdin.isTTY && !globals.json) return (await runShell(session, overrides, out)) ? 0 : 1;
    return (await runBatch(session, out, globals.parallel)) ? 0 : 1;
  } catch (e) {
    if (e instanceof SetupError || e instanceof UsageError) {
      out.fatal(e.message);
      return 2;
    }
    throw e;
  } finally {
    await session.close().catch(() => undefined);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    process.stderr.write(`kmu11: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exitCode = 70;
  },
);
