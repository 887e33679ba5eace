#!/usr/bin/env node
// kmu11 / key_mgmt_util: the interactive shell on a terminal, batch from a pipe, or
// `singlecmd <command> [flags] [<command> [flags] …]`, as key_mgmt_util has them.
import { PROFILES, resolveConfig } from '../backend/config.js';
import { SetupError, UsageError } from '../kmu/errors.js';
import { KmuSession } from '../kmu11.js';
import { jsonOutput, promptOf, textOutput, type Output, type Profile } from './output.js';
import { parseLine, parseSinglecmd } from './parse.js';
import { runParsed, usageFailure } from './run.js';
import { runShell } from './shell.js';
import { runInfo, runPasswd } from './tools.js';

interface Globals {
  json: boolean;
  profile?: Profile;
  module?: string;
  token?: string;
  home?: string;
}

const USAGE = `usage: kmu11 [--json] [--profile kmu3|pages] [--module <path>] [--token <label>] [--home <dir>] [singlecmd <command> [flags]… | info | passwd <user>]
  no mode on a terminal: the interactive shell (prompt "Command:  ")
  no mode with standard input from a pipe or file: one command a line`;

function readGlobals(argv: string[]): [Globals, string[]] {
  const g: Globals = { json: false };
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--json') g.json = true;
    else if (a === '--profile') {
      const v = argv[++i];
      if (!(PROFILES as readonly (string | undefined)[]).includes(v)) throw new UsageError(`--profile takes kmu3 or pages, not '${v ?? ''}'`);
      g.profile = v as Profile;
    } else if (a === '--module' || a === '--token' || a === '--home') {
      const v = argv[++i];
      if (v === undefined || v === '') throw new UsageError(`${a} needs a value`);
      g[a.slice(2) as 'module' | 'token' | 'home'] = v;
    } else if (a.startsWith('--')) throw new UsageError(`unknown option ${a}\n${USAGE}`);
    else break;
  }
  return [g, argv.slice(i)];
}

/**
 * Batch: one command a line, echoed after the prompt and answered as the shell would, with the
 * same blank line before the next prompt. A command's question (setAttribute without -v,
 * loginHSM -hpswd) reads the next line, as a terminal user types it.
 */
async function runBatch(session: KmuSession, out: Output): Promise<boolean> {
  const { createInterface } = await import('node:readline');
  const rl = createInterface({ input: process.stdin, crlfDelay: Infinity, terminal: false });
  const lines = rl[Symbol.asyncIterator]();
  session.setPrompt(async (question, { hidden }) => {
    const next = await lines.next();
    // A secret is never echoed; another answer shows after its question, as on the page.
    out.asked(question, hidden || next.done ? undefined : next.value);
    if (next.done) throw new UsageError('no input line left to answer the question');
    return next.value;
  });
  let allOk = true;
  for (let next = await lines.next(); !next.done; next = await lines.next()) {
    const line = next.value.trim();
    if (line === '' || line.startsWith('#')) continue;
    out.echo(line);
    let outcome;
    try {
      const parsed = parseLine(line);
      outcome = parsed ? await runParsed(session, parsed, out) : { ok: true, exit: false };
    } catch (e) {
      outcome = usageFailure(out, e);
    }
    allOk &&= outcome.ok;
    if (outcome.exit) break;
    out.between();
  }
  rl.close();
  return allOk;
}

/**
 * singlecmd: the commands run as the same lines would in batch: one that fails (a typo, a bad
 * value, a failed login) prints its error and the chain goes on; the exit status is 1 if any failed.
 */
async function runSinglecmd(session: KmuSession, words: string[], out: Output): Promise<boolean> {
  let commands;
  try {
    commands = parseSinglecmd(words);
  } catch (e) {
    usageFailure(out, e);
    return false;
  }
  let allOk = true;
  for (const entry of commands) {
    const outcome = 'error' in entry ? usageFailure(out, entry.error) : await runParsed(session, entry, out);
    allOk &&= outcome.ok;
    if (outcome.exit) break;
  }
  return allOk;
}

function profileFromEnv(): Profile | undefined {
  const v = process.env.KMU11_PROFILE;
  if (v === undefined || v === '') return undefined;
  if (!(PROFILES as readonly string[]).includes(v)) throw new UsageError(`KMU11_PROFILE must be kmu3 or pages, not '${v}'`);
  return v as Profile;
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
  const overrides = { module: globals.module, token: globals.token, home: globals.home };
  let profile: Profile;
  try {
    profile = globals.profile ?? profileFromEnv() ?? resolveConfig(overrides).profile;
  } catch (e) {
    early.fatal((e as Error).message);
    return 2;
  }
  const out = globals.json ? jsonOutput() : textOutput(profile);
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
    if (process.stdin.isTTY && !globals.json) return (await runShell(session, overrides, out, promptOf(profile))) ? 0 : 1;
    return (await runBatch(session, out)) ? 0 : 1;
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
