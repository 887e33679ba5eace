import type { Backend, HandleStore } from '../backend/index.js';
import type { CommandResult } from '../api.js';

/** What a command returns (the library's own type): formatters turn it into kmu's text or --json. */
export type { CommandResult };

/** How one flag of a kmu command reads its value; throws UsageError on bad input. */
export interface FlagSpec {
  /** As typed, e.g. "-i", "-m_value". */
  flag: string;
  /** Key in the command's typed options. */
  key: string;
  /** Absent: a switch (-nex, -sess). Present: reads the flag's value. */
  parse?: (text: string, flag: string) => unknown;
  required?: boolean;
  /** Shown after the flag in usage errors, e.g. "<EC curve id>". */
  metavar?: string;
  /** A password: masked in echoes, history and the process title. */
  secret?: boolean;
  /** What kmu calls the value in "Error: <what> (-i) is missing."; default: the metavar, capitalised. */
  what?: string;
}

/** What every command gets, a token or not. */
export interface OfflineContext {
  /** Aborted when the operator interrupts (Ctrl-C, SIGINT, SIGTERM): stop at a safe point and roll back. */
  signal?: AbortSignal;
}

/** What a command that works on the token gets: the backend (login, session) and its handle store. */
export interface CommandContext extends OfflineContext {
  backend: Backend;
  handles: HandleStore;
  /**
   * Ask the operator (loginHSM -hpswd). Absent when nobody can answer. `env`: a variable that
   * answers instead when set (KMU11_PASSWORD). Rejects with NoAnswer on Ctrl-D / end of input.
   */
  prompt?: (question: string, opts: { hidden: boolean; env?: string }) => Promise<string>;
}


interface CommandSpec<O> {
  name: string;
  /** One line for help. */
  description: string;
  /** kmu's operation name, for the returned line (also on errors). */
  op: string;
  /** The syntax block `<command> -h` prints. */
  syntax: string;
  flags: readonly FlagSpec[];
  /** Needs loginHSM first: the runner answers 0xa3 before run() otherwise. */
  needsLogin?: boolean;
  /**
   * How the command may overlap others in a parallel batch (kmu11 --parallel N). Absent: it is
   * a barrier (waits for every earlier line; every later line waits for it). Lines of one group
   * in a row run at once; two of them with the same `key` (an -id, a handle) keep their order.
   */
  parallel?: { group: 'create' | 'delete'; key?: (opts: O) => string | undefined };
  /** Cross-flag rules, after every flag parsed; throws UsageError. */
  validate?: (opts: O) => void;
}

/** A command on the token: run after the backend is open. */
export interface TokenCommand<O = Record<string, unknown>, D = Record<string, unknown>> extends CommandSpec<O> {
  offline?: false;
  run(ctx: CommandContext, opts: O): Promise<CommandResult<D>>;
}

/** A command that needs no token (help, Error2String, listAttributes): the backend is never opened for it. */
export interface OfflineCommand<O = Record<string, unknown>, D = Record<string, unknown>> extends CommandSpec<O> {
  offline: true;
  run(ctx: OfflineContext, opts: O): Promise<CommandResult<D>>;
}

export type Command<O = Record<string, unknown>, D = Record<string, unknown>> = TokenCommand<O, D> | OfflineCommand<O, D>;

export function ok<D>(command: Command<any, any>, data: D, warnings: string[] = []): CommandResult<D> {
  return { command: command.name, op: command.op, code: 0, warnings, data };
}
