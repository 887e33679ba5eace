import { SetupError, UsageError, type KmuError } from '../kmu/errors.js';
import { failure, type CommandRunner } from '../kmu11.js';
import type { CommandContext, CommandResult } from '../commands/index.js';
import type { Output } from './output.js';
import type { ParsedCommand } from './parse.js';

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
