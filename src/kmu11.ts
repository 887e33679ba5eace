// One kmu11 session: a backend (token + login), its key-handle store, and the commands run on
// them. The CLI's shell, batch and singlecmd modes and the library API all go through here.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { Backend } from './backend/backend.js';
import { openBackend } from './backend/index.js';
import { resolveConfig, type ConfigOverrides } from './backend/config.js';
import { IdentityHandleStore, openHandleStore, type HandleStore } from './backend/handles.js';
import { findCommand, type Command, type CommandContext, type CommandResult } from './commands/index.js';
import { KmuError, UsageError } from './kmu/errors.js';
import { RC } from './kmu/returnCodes.js';
import { checkOptions } from './commands/options.js';

export interface KmuOptions extends ConfigOverrides {
  /** Answers loginHSM -hpswd; absent in scripts and the library. */
  prompt?: CommandContext['prompt'];
}

/** A command that failed: the result object formatters print, with the reason. */
export interface FailedResult extends CommandResult<{ error: { detail?: string; ckr?: string; usage?: string } }> {}

export class KmuSession {
  private context?: Promise<CommandContext>;
  /** Contexts on sessions of their own, for parallel batches (index 0 is the main context). */
  private readonly lanes: Promise<CommandContext>[] = [];
  private closed = false;

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
    const backend: Backend = await openBackend(this.options);
    try {
      const handles: HandleStore =
        backend.kind === 'cloudhsm'
          ? new IdentityHandleStore(backend.session)
          : await openHandleStore(await this.storeDir(backend), backend.session, {
              // Logged in, a scan sees every key: one that is gone was deleted (tombstone it).
              fullView: () => backend.user !== null,
            });
      const options = this.options;
      return {
        backend,
        handles,
        get prompt() {
          return options.prompt;
        },
      };
    } catch (e) {
      await backend.close();
      throw e;
    }
  }

  /** The embedded token keeps handles in its home; another module's token gets a directory of its own there. */
  private async storeDir(backend: Backend): Promise<string> {
    const info = await backend.info();
    if (info.home) return info.home;
    const tag = createHash('sha256').update(`${info.modulePath}\0${info.token.serialNumber}\0${info.token.label}`).digest('hex');
    return join(backend.home ?? resolveConfig(this.options).home, 'handles', tag.slice(0, 16));
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

  /** Runs a command on a context from lane(). */
  async executeOn(ctx: CommandContext, command: Command<any, any>, options: Record<string, unknown>): Promise<CommandResult<any>> {
    return command.run(ctx, options);
  }

  /**
   * Runs a command whose options are already read (by the CLI parser, or by `run`). Returns the
   * result; a command that fails throws KmuError or UsageError.
   */
  async execute(command: Command<any, any>, options: Record<string, unknown>): Promise<CommandResult<any>> {
    if (command.offline) return command.run(undefined as unknown as CommandContext, options);
    return command.run(await this.connect(), options);
  }

  /**
   * Runs a command by name with typed options, validated by the same flag rules as the CLI:
   * `run('genECCKeyPair', { curve: 'P-256', label: 'signer', id: 'k1', nex: true })`.
   */
  async run(name: string, options: Record<string, unknown> = {}): Promise<CommandResult<any>> {
    const command = findCommand(name);
    if (!command) throw new UsageError(`unknown command '${name}'`);
    const read: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(options)) {
      const spec = command.flags.find((f) => f.key === key);
      if (!spec) throw new UsageError(`${name} has no option '${key}'`);
      if (value === undefined || value === false) continue;
      read[key] = spec.parse ? spec.parse(Array.isArray(value) ? value.join(',') : String(value), spec.flag) : true;
    }
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
    e instanceof UsageError ? { usage: e.message } : { ...(e.detail ? { detail: e.detail } : {}), ...(e.ckr ? { ckr: e.ckr } : {}) };
  return {
    command: command?.name ?? 'unknown',
    op: command?.op ?? 'unknown',
    code: e instanceof UsageError ? RC.INVALID_INPUT : e.code,
    warnings: [],
    data: { error },
  };
}

