import { RC, returnCodeText } from './returnCodes.js';

/**
 * A command failed with a kmu return code. Formatters print it as
 * "Cfm3<Op> returned: 0x.. : HSM Error: ..."; `detail` is an optional extra line.
 * `ckr` names the PKCS#11 error behind it, if any (shown in --json).
 */
export class KmuError extends Error {
  readonly code: number;
  readonly detail?: string;
  readonly ckr?: string;
  constructor(code: number, opts: { detail?: string; ckr?: string; cause?: unknown } = {}) {
    super(returnCodeText(code) ?? `HSM Error: 0x${code.toString(16)}`, { cause: opts.cause });
    this.name = 'KmuError';
    this.code = code;
    this.detail = opts.detail;
    this.ckr = opts.ckr;
  }
}

/** 0xa8 for a key handle the operator may not use or that names nothing: `why` says which. */
export function invalidHandle(handle: number, why: string): KmuError {
  return new KmuError(RC.INVALID_HANDLE, { detail: `key handle ${handle}: ${why}` });
}

/**
 * Bad input to a command (unknown flag, missing value, out-of-range number...): printed as
 * one line "Error: <message>" before anything reaches the token; exit status non-zero.
 */
export class UsageError extends Error {
  readonly code = RC.INVALID_INPUT;
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** The operator gave no answer to a question: Ctrl-D at it, or standard input ended. */
export class NoAnswer extends UsageError {
  constructor() {
    super('no answer (end of input)');
    this.name = 'NoAnswer';
  }
}

/** Required flags not given: kmu prints "Error: <what> (-<flag>) is missing." for each. */
export class MissingFlagsError extends UsageError {
  constructor(
    message: string,
    readonly missing: ReadonlyArray<{ flag: string; what: string }>,
  ) {
    super(message);
    this.name = 'MissingFlagsError';
  }
}

/**
 * kmu11 itself cannot start: no module, SoftHSM missing, unreadable config. One line, exit 2.
 */
export class SetupError extends Error {
  constructor(message: string, opts: { cause?: unknown } = {}) {
    super(message, opts);
    this.name = 'SetupError';
  }
}

/** Another error's message fit for a SetupError line: each line break and the blanks around it become one space, ends trimmed. */
export function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, ' ').trim();
}
