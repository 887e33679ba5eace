import { MissingFlagsError } from '../kmu/errors.js';
import type { Command, FlagSpec } from './types.js';

/** kmu's name for a flag's value: "<EC curve id>" → "EC curve id", "<label>" → "Label". */
function flagWhat(f: FlagSpec): string {
  const text = f.what ?? (f.metavar ?? f.flag).replace(/^[<[({]\s*|\s*[>\])}]$/g, '');
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** Required flags (every missing one reported at once, from the flag table) and the command's cross-flag rules. */
export function checkOptions(command: Command<any, any>, options: Record<string, unknown>): void {
  const missing = command.flags.filter((f) => f.required && options[f.key] === undefined);
  if (missing.length > 0)
    throw new MissingFlagsError(
      missing.map((f) => `${command.name}: ${f.flag} ${f.metavar ?? ''}`.trimEnd() + ' is required').join('; '),
      missing.map((f) => ({ flag: f.flag, what: flagWhat(f) })),
    );
  command.validate?.(options);
}
