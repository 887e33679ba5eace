import { UsageError } from '../kmu/errors.js';
import type { Command } from './types.js';

/** Required flags and the command's cross-flag rules. */
export function checkOptions(command: Command<any, any>, options: Record<string, unknown>): void {
  for (const f of command.flags)
    if (f.required && options[f.key] === undefined)
      throw new UsageError(`${command.name}: ${f.flag} ${f.metavar ?? ''} is required`.replace(/ +is/, ' is'));
  command.validate?.(options);
}
