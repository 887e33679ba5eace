// kmu command lines run on a CommandRunner, for the CLI's modes and the library alike: one parsed
// line with its result delivered (runParsed: the shell, singlecmd), and the batch (runBatchLines:
// piped input, the library's Kmu.batch), one command a line, answered as the shell would. With
// --parallel N, independent lines run on N PKCS#11 sessions at once; every line's output still
// comes in input order, and nothing a user could observe is reordered.
//
// The dependency rule (Command.parallel):
//  - Lines of one group in a row (key generations; key deletions) run at once, at most N.
//  - Two of them with the same key (the same -id; the same handle) keep their input order:
//    the second starts when the first has finished, so it sees it (0x07 for a second -id).
//  - Every other line (loginHSM, logoutHSM, findKey, getAttribute, setAttribute, exit, a line
//    that does not parse, …) is a barrier: it starts when every earlier line has finished, and
//    no later line starts before it has. So a findKey sees every key made above it, a deleteKey
//    of a handle printed above it runs after that line printed it, a question a command asks
//    reads the line after it, and nothing runs after exit.
// Handles differ from a serial run's (allocated as generations finish); everything else printed
// is the same. N = 1 is the serial batch itself (one code path).
import { SetupError, UsageError, type KmuError } from './kmu/errors.js';
import type { Command, CommandContext, CommandResult } from './commands/index.js';
import { maskLine, parseLine, type ParsedCommand } from './commands/parse.js';
import { failure, type CommandRunner } from './kmu11.js';

/** Where a line's result goes: the CLI's formatters (cli/output.ts), or what Kmu.batch collects. */
export interface Output {
  result(r: CommandResult<any>): void;
  syntax(command: string, syntax: string): void;
  /** A line typed in batch mode, echoed after kmu's prompt. */
  echo(line: string): void;
  /** What a terminal shows between one command's output and the next prompt. */
  between(): void;
  /** A command's question answered from the next batch line: the answer shows after it unless secret. */
  asked(question: string, answer: string | undefined): void;
  fatal(message: string): void;
}

/** The next line of a non-terminal input, shared with whoever reads commands from it. */
export type LineSource = () => Promise<string | undefined>;

/** A LineSource over a stream read by readline's async iterator. */
export function lineSource(iterator: AsyncIterator<string>): LineSource {
  return async () => {
    const next = await iterator.next();
    return next.done ? undefined : next.value;
  };
}

export interface Outcome {
  ok: boolean;
  exit: boolean;
}

export interface RunOptions {
  /** The operator's interruption (the shell's Ctrl-C). */
  signal?: AbortSignal;
  /** A parallel batch's context on a session of its own (CommandRunner.lane). */
  lane?: CommandContext;
  /** Resolves once the result is on the screen (a parallel batch holds it until the lines above have printed). */
  shown?: () => Promise<void>;
}

/**
 * Runs one parsed command and prints its result. Setup errors (no token to talk to) propagate;
 * every other failure becomes kmu's error result.
 */
export async function runParsed(runner: CommandRunner, parsed: ParsedCommand, out: Output, opts: RunOptions = {}): Promise<Outcome> {
  const { command } = parsed;
  if (parsed.help) {
    out.syntax(command.name, command.syntax);
    return { ok: true, exit: false };
  }
  try {
    const deliver = async (r: CommandResult<any>) => {
      out.result(r);
      await opts.shown?.();
    };
    const result = await runner.execute(command, parsed.options, deliver, opts.signal, opts.lane);
    return { ok: result.code === 0, exit: command.name === 'exit' };
  } catch (e) {
    if (e instanceof SetupError) throw e;
    const failed = failure(command, e as KmuError | UsageError); // execute() converted it
    if (runner.nodes > 1) (failed.data as { nodes?: number }).nodes = runner.nodes;
    out.result(failed);
    return { ok: false, exit: false };
  }
}

export function usageFailure(out: Output, e: unknown): Outcome {
  if (!(e instanceof UsageError)) throw e;
  out.result(failure(undefined, e));
  return { ok: false, exit: false };
}

/** One batch line as the runner sees it: its group and ordering key, or a barrier. */
interface Step {
  group?: 'create' | 'delete';
  key?: string;
}

function classify(parsed: ParsedCommand | undefined): Step {
  const c: Command<any, any> | undefined = parsed?.command;
  if (!parsed || parsed.help || !c?.parallel) return {};
  return { group: c.parallel.group, key: c.parallel.key?.(parsed.options) };
}

/** A line's output, held until the lines above it have printed. */
function recorder(): { out: Output; replay(to: Output): void } {
  const calls: Array<[keyof Output, unknown[]]> = [];
  const rec =
    (kind: keyof Output) =>
    (...args: unknown[]) =>
      void calls.push([kind, args]);
  return {
    out: { result: rec('result'), syntax: rec('syntax'), echo: rec('echo'), between: rec('between'), asked: rec('asked'), fatal: rec('fatal') } as Output,
    replay(to) {
      for (const [kind, args] of calls) (to[kind] as (...a: unknown[]) => void)(...args);
    },
  };
}

export interface BatchOptions {
  /** Lines in flight at once (1: the serial batch). */
  parallel: number;
  /** Progress on a terminal: cleared before a line prints, stepped after. */
  progress?: { clear(): void; step(): void };
  /** True once the batch must stop (SIGINT/SIGTERM): no further line starts. */
  stopped?: () => boolean;
}

/** Runs the batch read from `next`; true when every line succeeded. A SetupError ends it. */
export async function runBatchLines(runner: CommandRunner, next: LineSource, out: Output, o: BatchOptions): Promise<boolean> {
  let allOk = true;
  let stop = false;
  const halted = () => stop || (o.stopped?.() ?? false);
  // Lines run at once print strictly in input order: `printed` is the index of the next to print.
  const held = new Map<number, { replay(to: Output): void }>();
  const shownWaiters = new Map<number, () => void>();
  let printed = 0;
  const flush = () => {
    for (let r; (r = held.get(printed)); printed++) {
      held.delete(printed);
      o.progress?.clear();
      r.replay(out);
      o.progress?.step();
      shownWaiters.get(printed)?.();
      shownWaiters.delete(printed);
    }
  };

  const free: number[] = Array.from({ length: o.parallel }, (_, i) => i);
  const waiters: (() => void)[] = [];
  const takeLane = async (): Promise<number> => {
    while (free.length === 0) await new Promise<void>((r) => waiters.push(r));
    return free.shift()!;
  };
  const giveLane = (i: number) => {
    free.push(i);
    waiters.shift()?.();
  };

  let segment: { group: string; running: Promise<void>[]; byKey: Map<string, Promise<void>> } | undefined;
  let failure: { error: unknown } | undefined;
  const drain = async () => {
    if (segment) await Promise.all(segment.running);
    segment = undefined;
  };
  const settle = (outcome: Outcome) => {
    allOk &&= outcome.ok;
    if (outcome.exit) stop = true;
  };

  let index = -1;
  for (let raw = await next(); raw !== undefined && !halted() && !failure; raw = await next()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    index++;
    let parsed: ParsedCommand | undefined;
    let error: unknown;
    try {
      parsed = parseLine(line) ?? undefined;
    } catch (e) {
      error = e;
    }
    const step = error ? {} : classify(parsed);
    if (!step.group) {
      // A barrier runs alone, printing as it goes (a question it asks lands after its echo and
      // reads the next input line).
      await drain();
      if (failure || halted()) break;
      o.progress?.clear();
      out.echo(maskLine(line));
      settle(error ? usageFailure(out, error) : parsed ? await runParsed(runner, parsed, out) : { ok: true, exit: false });
      printed = index + 1;
      o.progress?.step();
      if (halted()) break;
      out.between();
      continue;
    }
    if (segment && segment.group !== step.group) await drain();
    if (failure || halted()) break;
    segment ??= { group: step.group, running: [], byKey: new Map() };
    const before = step.key ? segment.byKey.get(step.key) : undefined;
    const lane = await takeLane();
    const at = index;
    const rec = recorder();
    let queued = false;
    // The line's output joins the queue to print: at its result (so that the result counts as
    // shown, and its generations are settled in the handle store, only once it is printed; a
    // kill -9 before that has them finished or rolled back by the next process), or at the end.
    const enqueue = () => {
      if (queued) return;
      queued = true;
      rec.out.between();
      held.set(at, rec);
      flush();
    };
    const shown = () =>
      new Promise<void>((resolve) => {
        enqueue();
        if (at < printed) resolve();
        else shownWaiters.set(at, resolve);
      });
    const run = (async () => {
      try {
        if (before) await before;
        if (halted()) return;
        rec.out.echo(maskLine(line));
        const ctx = lane === 0 ? undefined : await runner.lane(lane);
        settle(await runParsed(runner, parsed!, rec.out, { lane: ctx, shown }));
      } catch (e) {
        failure ??= { error: e };
      } finally {
        giveLane(lane);
        if (!halted() || queued) enqueue();
        else {
          held.set(at, { replay() {} });
          flush();
        }
      }
    })();
    segment.running.push(run);
    if (step.key) segment.byKey.set(step.key, run);
  }
  await drain();
  if (failure) throw failure.error;
  return allOk;
}
