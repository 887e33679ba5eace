// The command runner: one connection to a token (a backend with its login, and its key-handle
// store) and the commands run on it. The CLI's shell, batch and singlecmd modes and the library
// API (Kmu) all go through here.
import type { ConfigOverrides } from './backend/index.js';
import { findCommand, type Command, type CommandContext, type CommandResult } from './commands/index.js';
import { KmuError, MissingFlagsError, SetupError, UsageError } from './kmu/errors.js';
import { toKmuError } from './kmu/pkcs11Codes.js';
import { RC } from './kmu/returnCodes.js';
import { checkOptions } from './commands/options.js';
import { checkInterrupt, requireLogin } from './commands/lib/context.js';
import { readApiOptions } from './commands/apiOptions.js';

export interface KmuOptions extends ConfigOverrides {
  /** Answers loginHSM -hpswd; absent in scripts and the library. */
  prompt?: CommandContext['prompt'];
  /** The clock quorum tokens are made and expire by (default Date.now; tests move it). */
  clock?: () => number;
}

/** A command that failed: the result object formatters print, with the reason. */
export interface FailedResult
  extends CommandResult<{ error: { detail?: string; ckr?: string; usage?: string; missing?: Array<{ flag: string; what: string }> } }> {}

export class CommandRunner {
  private context?: Promise<CommandContext>;
  /** Contexts on sessions of their own, for parallel batches (index 0 is the main context). */
  private readonly lanes: Promise<CommandContext>[] = [];
  private closed = false;
  /** The running commands' interruptions (see interrupt()); several at once in a parallel batch. */
  private readonly running = new Set<AbortController>();
  /** HSMs the open backend spans (kmu prints one "Node id" line for each); 1 before it opens. */
  nodes = 1;

  constructor(private readonly options: KmuOptions = {}) {}

  /** Who answers loginHSM -hpswd (the shell sets this; scripts and the library have nobody). */
  setPrompt(prompt: CommandContext['prompt']): void {
    this.options.prompt = prompt;
  }

  /** Opens the backend now (the CLI opens it at the first command that needs the token). */
  async connect(): Promise<CommandContext> {
    if (this.closed) throw new UsageError('this kmu11 session is closed');
    this.context ??= this.open();
    return this.context;
  }

  private async open(): Promise<CommandContext> {
    // Loaded here, not at start-up: help, -h and the other offline commands never need them.
    const { connect } = await import('./backend/index.js');
    const { backend, handles } = await connect(this.options);
    if (this.options.clock && backend.userModel) backend.userModel.quorum.now = this.options.clock;
    this.nodes = Math.max(1, backend.capabilities.servers);
    const options = this.options;
    return {
      backend,
      handles,
      get prompt() {
        return options.prompt;
      },
    };
  }

  /**
   * Interrupts the running command (SIGINT, SIGTERM, Ctrl-C): it rolls back what it made and
   * fails. `reason` names the signal. Returns false when no command is running.
   */
  interrupt(reason: string): boolean {
    if (this.running.size === 0) return false;
    for (const r of this.running) r.abort(reason);
    return true;
  }

  /**
   * Context `i` of a parallel batch: the same backend, login and handle store on a PKCS#11
   * session of its own (PKCS#11 forbids two calls at once on one session; login state is the
   * slot's, shared by every session). Lane sessions stay open until close(): the session keys
   * (-sess) made on them live as long as the kmu11 session, as on the main one.
   */
  async lane(i: number): Promise<CommandContext> {
    if (i === 0) return this.connect();
    this.lanes[i] ??= this.connect().then(async (ctx) => {
      const session = await ctx.backend.slot.openSession({ rw: true });
      const backend = new Proxy(ctx.backend, {
        get: (target, p) => (p === 'session' ? session : Reflect.get(target, p, target)),
      });
      return { ...ctx, backend, get prompt() { return ctx.prompt; } };
    });
    return this.lanes[i]!;
  }

  /**
   * Runs a command whose options are already read (by the CLI parser, or by `run`). Returns the
   * result; a command that fails throws KmuError or UsageError (converted here, once), or
   * SetupError when there is no token to talk to. `deliver` shows the result (the CLI prints
   * it): only after that are the command's generations settled in the handle store, so a
   * process killed before its handles were shown has them finished or rolled back later.
   */
  async execute(
    command: Command<any, any>,
    options: Record<string, unknown>,
    deliver?: (result: CommandResult<any>) => void | Promise<void>,
    signal?: AbortSignal,
    lane?: CommandContext,
  ): Promise<CommandResult<any>> {
    const running = new AbortController();
    this.running.add(running);
    // The caller's own interruption (the shell's Ctrl-C) reaches the command the same way.
    const forward = () => running.abort(signal!.reason);
    if (signal?.aborted) forward();
    else signal?.addEventListener('abort', forward, { once: true });
    let delivered = false;
    try {
      if (command.offline) {
        const result = await command.run({ signal: running.signal }, options);
        deliver?.(result);
        return result;
      }
      const on = lane ?? (await this.connect());
      // Interrupted while the token was being opened: the command has not started.
      checkInterrupt({ signal: running.signal });
      // The generations this command announces are its own to settle (several run at once in a
      // parallel batch): settled only once its result was shown.
      return await on.handles.scope(async () => {
        try {
          await on.handles.recover();
          const ctx = { ...on, prompt: on.prompt, signal: running.signal };
          if (command.needsLogin) requireLogin(ctx);
          const result = await command.run(ctx, options);
          result.warnings.push(...on.handles.takeWarnings());
          await deliver?.(result);
          delivered = true;
          return result;
        } finally {
          await on.handles.settle(delivered).catch(() => undefined);
        }
      });
    } catch (e) {
      if (e instanceof SetupError) throw e;
      throw toKmuError(e);
    } finally {
      signal?.removeEventListener('abort', forward);
      this.running.delete(running);
    }
  }

  /**
   * Runs a command by name with typed options, validated by the same flag rules as the CLI:
   * `run('genECCKeyPair', { curve: 'P-256', label: 'signer', id: 'k1', nex: true })`.
   */
  async run(name: string, options: Record<string, unknown> = {}): Promise<CommandResult<any>> {
    const command = findCommand(name);
    if (!command) throw new UsageError(`unknown command '${name}'`);
    const read = readApiOptions(command, options);
    checkOptions(command, read);
    return this.execute(command, read);
  }

  /** Closes the backend; session keys (-sess) end here. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (!this.context) return;
    const ctx = await this.context.catch(() => undefined);
    if (!ctx) return;
    for (const lane of this.lanes) {
      const l = await lane?.catch(() => undefined);
      if (l) await l.backend.session.close().catch(() => undefined);
    }
    await ctx.handles.close().catch(() => undefined);
    await ctx.backend.close();
  }
}

/** The result object of a failed command, for the formatters. */
export function failure(command: Command<any, any> | undefined, e: KmuError | UsageError): FailedResult {
  const error =
    e instanceof MissingFlagsError
      ? { usage: e.message, missing: [...e.missing] }
      : e instanceof UsageError
        ? { usage: e.message }
        : { ...(e.detail ? { detail: e.detail } : {}), ...(e.ckr ? { ckr: e.ckr } : {}) };
  return {
    command: command?.name ?? 'unknown',
    op: command?.op ?? 'unknown',
    code: e instanceof UsageError ? RC.INVALID_INPUT : e.code,
    warnings: [],
    data: { error },
  };
}

