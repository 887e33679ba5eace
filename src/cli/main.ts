#!/usr/bin/env node
// kmu11 / key_mgmt_util: the interactive shell on a terminal, batch from a pipe, or
// `singlecmd <command> [flags] [<command> [flags] …]`, as key_mgmt_util has them.
import { PROFILES, resolveConfig } from '../backend/index.js';
import { KmuError, NoAnswer, SetupError, UsageError } from '../kmu/errors.js';
import { toKmuError } from '../kmu/pkcs11Codes.js';
import { CommandRunner } from '../kmu11.js';
import { jsonOutput, printableLine, promptOf, textOutput, type Profile } from './output.js';
import { maskWords, parseSinglecmd } from '../commands/parse.js';
import { askOrEnv, stdinLines } from './prompt.js';
import { runBatchLines, runParsed, usageFailure, type Output } from '../batch.js';
import { runShell } from './shell.js';
import { runInfo, runPasswd } from './tools.js';
import { runUsers } from './users.js';
import { runAttest } from './attest.js';
import { completionScript } from './completion.js';
import { batchProgress } from './progress.js';
import { version } from './version.js';

interface Globals {
  json: boolean;
  profile?: Profile;
  /** Batch lines in flight at once (--parallel N); 1 is the serial batch. */
  parallel: number;
  module?: string;
  token?: string;
  home?: string;
  help?: boolean;
  version?: boolean;
}

const USAGE = `usage: kmu11 [--json] [--profile kmu3|pages] [--parallel <n>] [--module <path>] [--token <label>] [--home <dir>] [singlecmd <command> [flags]… | info | passwd <user> | users <verb> … | attest [--repin|--show]]
  no mode on a terminal: the interactive shell (prompt "Command:  ")
  no mode with standard input from a pipe or file: one command a line (--parallel n: independent lines on n sessions at once)
  singlecmd help: kmu's commands; <command> -h: its flags
  kmu11 completion bash|zsh: a completion script (source <(kmu11 completion bash))
  kmu11 --version, kmu11 --help`;

function readGlobals(argv: string[]): [Globals, string[]] {
  const g: Globals = { json: false, parallel: 1 };
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--json') g.json = true;
    else if (a === '--help' || a === '-h') g.help = true;
    else if (a === '--version') g.version = true;
    else if (a === '--profile') {
      const v = argv[++i];
      if (!(PROFILES as readonly (string | undefined)[]).includes(v)) throw new UsageError(`--profile takes kmu3 or pages, not '${v ?? ''}'`);
      g.profile = v as Profile;
    } else if (a === '--parallel') {
      const v = argv[++i];
      if (v === undefined || !/^[1-9][0-9]{0,2}$/.test(v) || Number(v) > 64)
        throw new UsageError('--parallel needs a number of sessions from 1 to 64');
      g.parallel = Number(v);
    } else if (a === '--module' || a === '--token' || a === '--home') {
      const v = argv[++i];
      if (v === undefined || v === '') throw new UsageError(`${a} needs a value`);
      g[a.slice(2) as 'module' | 'token' | 'home'] = v;
    } else if (a.startsWith('--')) throw new UsageError(`unknown option ${printableLine(a)}\n${USAGE}`);
    else break;
  }
  return [g, argv.slice(i)];
}

/**
 * SIGINT and SIGTERM: the running command rolls back what it made and fails, nothing more
 * runs, and kmu11 exits 128 + the signal's number. `stop` ends the mode's input.
 */
class Interrupts {
  signal?: NodeJS.Signals;
  stop = () => {};
  private readonly handler = (sig: NodeJS.Signals) => {
    this.signal ??= sig;
    this.runner.interrupt(sig);
    this.stop();
  };
  constructor(private readonly runner: CommandRunner, private readonly signals: NodeJS.Signals[]) {
    for (const s of signals) process.on(s, this.handler);
  }
  dispose(): void {
    for (const s of this.signals) process.off(s, this.handler);
  }
  get exitCode(): number | undefined {
    return this.signal && 128 + (this.signal === 'SIGINT' ? 2 : 15);
  }
}

async function runBatch(runner: CommandRunner, out: Output, interrupts: Interrupts, parallel: number): Promise<boolean> {
  const input = stdinLines();
  interrupts.stop = input.close;
  // A command's question (setAttribute without -v, loginHSM -hpswd) reads the next line, as a
  // terminal user types it; that line is not run. A secret is never echoed; another answer
  // shows after its question, as on the page.
  const next = input.next;
  runner.setPrompt(async (question, opts) => {
    const answer = await askOrEnv(question, opts, { hidden: opts.hidden, terminal: false, lines: next });
    out.asked(question, opts.hidden ? undefined : answer);
    return answer;
  });
  const progress = batchProgress();
  try {
    return await runBatchLines(runner, next, out, { parallel, progress, stopped: () => interrupts.signal !== undefined });
  } finally {
    progress.done();
    input.close();
  }
}

/**
 * singlecmd: the commands run as the same lines would in batch: one that fails (a typo, a bad
 * value, a failed login) prints its error and the chain goes on; the exit status is 1 if any failed.
 */
async function runSinglecmd(runner: CommandRunner, words: string[], out: Output, interrupts: Interrupts): Promise<boolean> {
  // ps shows the command line: a password given with -p is masked there as soon as kmu11 runs.
  const masked = maskWords(words);
  if (masked.some((w, i) => w !== words[i])) process.title = ['kmu11', 'singlecmd', ...masked].join(' ');
  let input: ReturnType<typeof stdinLines> | undefined;
  runner.setPrompt(async (question, opts) => {
    if (!process.stdin.isTTY && !opts.hidden) throw new NoAnswer();
    if (!input && !process.stdin.isTTY) input = stdinLines();
    return askOrEnv(question, opts, { hidden: opts.hidden, lines: input?.next });
  });
  try {
    return await runCommands(runner, words, out, interrupts);
  } finally {
    input?.close();
  }
}

async function runCommands(runner: CommandRunner, words: string[], out: Output, interrupts: Interrupts): Promise<boolean> {
  if (words.length === 0 || words[0] === '-h' || words[0] === '--help') words = ['help'];
  let commands;
  try {
    commands = parseSinglecmd(words);
  } catch (e) {
    usageFailure(out, e);
    return false;
  }
  let allOk = true;
  for (const entry of commands) {
    if (interrupts.signal) break;
    const outcome = 'error' in entry ? usageFailure(out, entry.error) : await runParsed(runner, entry, out);
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
  if (globals.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  if (globals.version) {
    process.stdout.write(`kmu11 ${version()}\n`);
    return 0;
  }
  if (mode === 'completion') {
    try {
      process.stdout.write(completionScript(rest[1]));
      return 0;
    } catch (e) {
      early.fatal((e as Error).message);
      return 2;
    }
  }
  const runner = new CommandRunner(overrides);
  const shell = mode === undefined && process.stdin.isTTY && !globals.json;
  // The shell reads Ctrl-C itself (a terminal in raw mode); a SIGTERM ends it like the others.
  const interrupts = new Interrupts(runner, mode === 'info' || mode === 'passwd' ? [] : shell ? ['SIGTERM'] : ['SIGINT', 'SIGTERM']);
  const status = (ok: boolean) => {
    if (!interrupts.signal) return ok ? 0 : 1;
    out.fatal(`interrupted by ${interrupts.signal}`);
    return interrupts.exitCode!;
  };
  try {
    if (mode === 'info') return await runInfo(runner, globals.json);
    if (mode === 'passwd') return await runPasswd(overrides, rest.slice(1));
    if (mode === 'attest') return await runAttest(runner, rest.slice(1), globals.json);
    if (mode === 'users') return await runUsers(overrides, rest.slice(1));
    if (mode === 'singlecmd') return status(await runSinglecmd(runner, rest.slice(1), out, interrupts));
    if (mode !== undefined) {
      out.fatal(`unknown mode '${printableLine(mode)}'\n${USAGE}`);
      return 2;
    }
    if (shell) return status(await runShell(runner, overrides, out, promptOf(profile)));
    return status(await runBatch(runner, out, interrupts, globals.parallel));
  } catch (e) {
    if (e instanceof SetupError || e instanceof UsageError) {
      out.fatal(e.message);
      return 2;
    }
    // A PKCS#11 call failing outside kmu's commands (info, users, attest opening the token).
    const k = toKmuError(e);
    if (k instanceof KmuError && (k.ckr !== undefined || e instanceof KmuError)) {
      out.fatal(`${k.message}${k.detail ? ` (${k.detail})` : ''}`);
      return 2;
    }
    throw e;
  } finally {
    await runner.close().catch(() => undefined);
    interrupts.dispose();
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Interrupted while standing input was still open: nothing more is to come.
    if (code > 128) process.exit(code);
  },
  (e) => {
    process.stderr.write(`kmu11: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exitCode = 70;
  },
);
