// The library's typed options, read by the same rules as the flags: each value goes through its
// flag's reader as the text an operator would type, and its JavaScript type must match what
// that reader makes (a label is a string, a handle a number, a switch a boolean), so 42 is not
// a label and 'yes' is not -nex.
import { UsageError } from '../kmu/errors.js';
import type { Command, FlagSpec } from './types.js';

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `${typeof value} ${JSON.stringify(value)}`;
}

/** The JavaScript types a flag's value may have, judged by what its reader returns. */
function accepts(value: unknown, parsed: unknown): boolean {
  if (typeof parsed === 'string') return typeof value === 'string';
  if (typeof parsed === 'number') return typeof value === 'number';
  if (Array.isArray(parsed)) return Array.isArray(value) ? value.every((x) => typeof x === typeof parsed[0]) : false;
  // A table row (an EC curve): its id or one of its names.
  return typeof value === 'number' || typeof value === 'string';
}

function wants(parsed: unknown): string {
  if (typeof parsed === 'string') return 'a string';
  if (typeof parsed === 'number') return 'a number';
  if (Array.isArray(parsed)) return `an array of ${typeof parsed[0]}s`;
  return 'a number or a name';
}

/** The value as an operator types it: a list comma-separated; a number in decimal, or in 0x hex for a flag written so (Error2String -r). */
function parseText(spec: FlagSpec, value: unknown): unknown {
  const parse = spec.parse!;
  if (Array.isArray(value)) return parse(value.join(','), spec.flag);
  try {
    return parse(String(value), spec.flag);
  } catch (e) {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) throw e;
    try {
      return parse(`0x${value.toString(16)}`, spec.flag);
    } catch {
      throw e;
    }
  }
}

function readOne(command: Command<any, any>, spec: FlagSpec, value: unknown): unknown {
  const name = `${command.name}: option '${spec.key}' (${spec.flag})`;
  if (!spec.parse) {
    if (typeof value !== 'boolean') throw new UsageError(`${name} is a switch: true or false, not ${typeName(value)}`);
    return value || undefined;
  }
  if (value === null || (typeof value === 'object' && !Array.isArray(value)) || typeof value === 'boolean')
    throw new UsageError(`${name} takes a value, not ${typeName(value)}`);
  if (typeof value === 'number' && !Number.isFinite(value)) throw new UsageError(`${name} takes a finite number, not ${value}`);
  const parsed = parseText(spec, value);
  if (!accepts(value, parsed)) throw new UsageError(`${name} takes ${wants(parsed)}, not ${typeName(value)}`);
  return parsed;
}

/** Options object → the options a command runs with; UsageError names the option at fault. */
export function readApiOptions(command: Command<any, any>, options: Record<string, unknown>): Record<string, unknown> {
  if (options === null || typeof options !== 'object' || Array.isArray(options))
    throw new UsageError(`${command.name} takes an options object`);
  const read: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(options)) {
    const spec = command.flags.find((f) => f.key === key);
    if (!spec) throw new UsageError(`${command.name} has no option '${key}'`);
    if (value === undefined) continue;
    const v = readOne(command, spec, value);
    if (v !== undefined) read[key] = v;
  }
  return read;
}
