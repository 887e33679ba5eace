import { KmuError, SetupError, UsageError } from '../kmu/errors.js';
import { toKmuError } from '../commands/lib/context.js';
import { failure, type KmuSession } from '../kmu11.js';
import type { CommandContext } from '../commands/index.js';
import type { Output } from './output.js';
import type { ParsedCommand } from './parse.js';

export interface Outcome {
  ok: boolean;
  exit: boolean;
}

/**
 * Runs one parsed command and prints its result. Setup errors (no token to talk to) propagate;
 * every other failure becomes kmu's error result.
 */
export async function runParsed(session: KmuSession, parsed: ParsedCommand, out: Output, lane?: CommandContext): Promise<Outcome> {
  const { command } = parsed;
  if (parsed.help) {
    out.syntax(command.name, command.syntax);
    return { ok: true, exit: false };
  }
  try {
    const result = lane ? await session.executeOn(lane, command, parsed.options) : await session.execute(command, parsed.options);
    out.result(result);
    return { ok: result.code === 0, exit: command.name === 'exit' };
  } catch (e) {
    if (e instanceof SetupError) throw e;
    const err = e instanceof UsageError || e instanceof KmuError ? e : toKmuError(e);
    out.result(failure(command, err));
    return { ok: false, exit: false };
  }
}

export function usageFailure(out: Output, e: unknown): Outcome {
  if (!(e instanceof UsageError)) throw e;
  out.result(failure(undefined, e));
  return { ok: false, exit: false };
}
