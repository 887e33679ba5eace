// kmu11 --parallel N < script.kmu: independent lines of a batch on N PKCS#11 sessions at once,
// every line's output in input order, and nothing a user could observe reordered.
//
// The dependency rule (Command.parallel):
//  - Lines of one group in a row (key generations; key deletions) run at once, at most N.
//  - Two of them with the same key (the same -id; the same handle) keep their input order:
//    the second starts when the first has finished, so it sees it (0x07 for a second -id).
//  - Every other line (loginHSM, logoutHSM, findKey, getAttribute, setAttribute, exit, a line
//    that does not parse, …) is a barrier: it starts when every earlier line has finished, and
//    no later line starts before it has. So a findKey sees every key made above it, a deleteKey
//    of a handle printed above it runs after that line printed it, and nothing runs after exit.
// Handles differ from a serial run's (allocated as generations finish); everything else printed
// is the same. With N = 1 this is the serial batch itself (one code path).
import type { Command } from '../commands/index.js';
import type { KmuSession } from '../kmu11.js';
import type { Output } from './output.js';
import { parseLine, type ParsedCommand } from './parse.js';
import { runParsed, usageFailure, type Outcome } from './run.js';

/** One batch line as the parallel runner sees it. */
export interface Step {
  line: string;
  /** Undefined: a barrier (and the parse error, if any, is reported when it runs). */
  group?: 'create' | 'delete';
  key?: string;
}

/** The group and ordering key of a parsed line; a line that does not parse is a barrier. */
export function classify(line: string, parsed: ParsedCommand | undefined): Step {
  const c: Command<any, any> | undefined = parsed?.command;
  if (!parsed || parsed.help || !c?.parallel) return { line };
  return { line, group: c.parallel.group, key: c.parallel.key?.(parsed.options) };
}

/** What each output call was, so a line's output can be held until the lines above it printed. */
type Call = { kind: 'result' | 'syntax' | 'echo'; args: unknown[] };

function recorder(): { out: Output; replay(to: Output): void } {
  const calls: Call[] = [];
  const rec =
    (kind: Call['kind']) =>
    (...args: unknown[]) =>
      void calls.push({ kind, args });
  return {
    out: { result: rec('result'), syntax: rec('syntax'), echo: rec('echo'), fatal: () => undefined } as Output,
    replay(to) {
      for (const c of calls) (to[c.kind] as (...a: unknown[]) => void)(...c.args);
    },
  };
}

/**
 * Runs a batch: one command a line from `input` (blank lines and `#` comments skipped), up to
 * `n` lines in flight. With n = 1 this is the serial batch. Returns whether every line succeeded.
 * A SetupError (no token) ends the batch.
 */
export async function runBatchLines(session: KmuSession, input: AsyncIterable<string>, out: Output, n: number): Promise<boolean> {
  let allOk = true;
  let stop = false;
  // Lines run at once print strictly in input order: `printed` is the index of the next to print.
  const held = new Map<number, { replay(to: Output): void }>();
  let printed = 0;
  const flush = () => {
    for (let r; (r = held.get(printed)); printed++) {
      held.delete(printed);
      r.replay(out);
    }
  };

  const free: number[] = Array.from({ length: n }, (_, i) => i);
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
  for await (const raw of input) {
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
    const step = error ? { line } : classify(line, parsed);
    if (!step.group) {
      // A barrier runs alone, printing as it goes (a prompt it shows lands after its echo),
      // and reads the input itself if it asks (setAttribute without -v).
      await drain();
      if (failure || stop) break;
      out.echo(line);
      settle(error ? usageFailure(out, error) : parsed ? await runParsed(session, parsed, out) : { ok: true, exit: false });
      printed = index + 1;
      if (stop) break;
      continue;
    }
    if (segment && segment.group !== step.group) await drain();
    if (failure) break;
    segment ??= { group: step.group, running: [], byKey: new Map() };
    const before = step.key ? segment.byKey.get(step.key) : undefined;
    const lane = await takeLane();
    const at = index;
    const run = (async () => {
      const rec = recorder();
      try {
        if (before) await before;
        rec.out.echo(line);
        settle(await runParsed(session, parsed!, rec.out, lane === 0 ? undefined : await session.lane(lane)));
      } catch (e) {
        failure ??= { error: e };
      } finally {
        giveLane(lane);
        held.set(at, rec);
        flush();
      }
    })();
    segment.running.push(run);
    if (step.key) segment.byKey.set(step.key, run);
  }
  await drain();
  if (failure) throw failure.error;
  return allOk;
}
