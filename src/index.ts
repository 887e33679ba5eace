// The library API: kmu's commands with typed options instead of flags.
//
//   import { Kmu } from 'kmu11';                        // or: const { Kmu } = require('kmu11')
//   const kmu = await Kmu.open();                       // the embedded token, or { module, token, home }
//   await kmu.loginHSM({ user: 'crypto_user', password: 'password' });
//   const { publicKey, privateKey } = await kmu.genECCKeyPair({ curve: 'P-256', label: 'signer', id: 'k1', nex: true });
//   await kmu.deleteKey({ handle: publicKey });
//   await kmu.close();
//
// Every command of the table is a method (its types: CommandMap in api.ts). A failing command
// throws KmuError (kmu's return code in .code, the CKR name in .ckr) or UsageError (bad
// options; nothing reached the token).
import { COMMANDS } from './commands/index.js';
import { CURVES as CURVE_TABLE } from './kmu/curves.js';
import { OBJ_ATTRS as OBJ_ATTR_TABLE } from './kmu/objAttr.js';
import { CommandRunner } from './kmu11.js';
import type { CommandData, CommandMap, CommandMethods, CommandName, CommandOptions, CommandResult, CurveInfo, Info, OpenOptions } from './api.js';
import { lineSource, runBatchLines, type Output } from './batch.js';
import { UsageError } from './kmu/errors.js';

export { KmuError, UsageError, SetupError } from './kmu/errors.js';
export { RC, returnCodeText } from './kmu/returnCodes.js';
export type * from './api.js';

/** kmu's EC curves, ids 1–15 as the genECCKeyPair page numbers them. */
export const CURVES: readonly CurveInfo[] = CURVE_TABLE;
/** kmu's OBJ_ATTR constants (getAttribute -a, listAttributes). */
export const OBJ_ATTRS: readonly { id: number; name: string; listed: boolean }[] = OBJ_ATTR_TABLE;

/** Methods that return the command's data as it is; findKey and the logins are written out below. */
type TableMethods = Omit<CommandMethods, 'findKey' | 'loginHSM' | 'logoutHSM'>;

// The class gets one method a command from the table below (declaration merging types them).
export interface Kmu extends TableMethods {}

export class Kmu {
  private constructor(private readonly runner: CommandRunner) {}

  static async open(options: OpenOptions = {}): Promise<Kmu> {
    const runner = new CommandRunner({ ...options });
    await runner.connect();
    return new Kmu(runner);
  }

  /** Any command by its kmu name with typed options; the result with kmu's return code and warnings. */
  run<K extends CommandName>(command: K, options?: CommandOptions<K>): Promise<CommandResult<CommandData<K>>>;
  run(command: string, options?: object): Promise<CommandResult>;
  run(command: string, options: object = {}): Promise<CommandResult<any>> {
    return this.runner.run(command, options as Record<string, unknown>);
  }

  async info(): Promise<Info> {
    return (await this.runner.connect()).backend.info();
  }

  /** loginHSM -u CU -s <user> -p <password> */
  async loginHSM(o: CommandOptions<'loginHSM'>): Promise<void> {
    await this.run('loginHSM', { ...o, userType: o.userType ?? 'CU' });
  }

  async logoutHSM(): Promise<void> {
    await this.run('logoutHSM');
  }

  /** The handles of the matching keys. */
  async findKey(o: CommandOptions<'findKey'> = {}): Promise<number[]> {
    return (await this.run('findKey', o)).data.handles;
  }

  /**
   * kmu11's batch mode for programs: kmu command lines (`genECCKeyPair -i 2 -l a`), up to
   * `parallel` at once on sessions of their own under the same dependency rule as
   * `kmu11 --parallel` (README). Results in input order; failed lines give their failure result
   * (code ≠ 0, data.error) instead of throwing, as in a batch file.
   */
  async batch(lines: Iterable<string> | AsyncIterable<string>, o: { parallel?: number } = {}): Promise<CommandResult[]> {
    const parallel = o.parallel ?? 1;
    if (!Number.isInteger(parallel) || parallel < 1 || parallel > 64) throw new UsageError('parallel must be a whole number from 1 to 64');
    const results: CommandResult[] = [];
    const collect: Output = {
      result: (r) => void results.push(r as CommandResult),
      syntax: (command, syntax) => void results.push({ command, op: command, code: 0, warnings: [], data: { syntax } } as CommandResult),
      echo: () => undefined,
      between: () => undefined,
      asked: () => undefined,
      fatal: () => undefined,
    };
    const source = (async function* () {
      yield* lines;
    })();
    await runBatchLines(this.runner, lineSource(source), collect, { parallel });
    return results;
  }

  async close(): Promise<void> {
    await this.runner.close();
  }
}

// Commands the library leaves out: the shell's own, and those written out above.
const NOT_METHODS = new Set(['exit', 'help', 'findKey', 'loginHSM', 'logoutHSM']);
/** What an option left out means where the library can choose (the flag has no default). */
const DEFAULTS: { [K in CommandName]?: Partial<CommandOptions<K>> } = { genDSAKeyPair: { modulusBits: 2048 } };

for (const { name } of COMMANDS) {
  if (NOT_METHODS.has(name) || name in Kmu.prototype) continue;
  const defaults = (DEFAULTS as Record<string, object | undefined>)[name];
  // Named after the command, so stack traces say Kmu.deleteKey.
  const method = {
    async [name](this: Kmu, options?: object) {
      return (await this.run(name, { ...defaults, ...options })).data;
    },
  }[name]!;
  Object.defineProperty(Kmu.prototype, name, { value: method, writable: true, configurable: true });
}

export type { CommandMap };
