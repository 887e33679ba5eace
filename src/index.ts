// The library API: kmu's commands with typed options instead of flags.
//
//   import { Kmu } from 'kmu11';
//   const kmu = await Kmu.open();                       // the embedded token, or { module, token, home }
//   await kmu.loginHSM({ user: 'crypto_user', password: 'password' });
//   const { publicKey, privateKey } = await kmu.genECCKeyPair({ curve: 'P-256', label: 'signer', id: 'k1', nex: true });
//   await kmu.close();
//
// A failing command throws KmuError (kmu's return code in .code, the CKR name in .ckr) or
// UsageError (bad options; nothing reached the token).
import type { CommandResult } from './commands/index.js';
import type { GenECCKeyPairData } from './commands/genECCKeyPair.js';
import type { GenDSAKeyPairData } from './commands/genDSAKeyPair.js';
import type { GetAttributeData } from './commands/getAttribute.js';
import type { ListECCCurveIdsData } from './commands/listECCCurveIds.js';
import { KmuSession, type KmuOptions } from './kmu11.js';
import { runBatchLines } from './cli/parallel.js';
import type { Output } from './cli/output.js';
import { UsageError } from './kmu/errors.js';
import type { BackendInfo } from './backend/backend.js';

export { KmuError, UsageError, SetupError } from './kmu/errors.js';
export { RC, returnCodeText } from './kmu/returnCodes.js';
export { CURVES } from './kmu/curves.js';
export { OBJ_ATTRS } from './kmu/objAttr.js';
export type { CommandResult } from './commands/index.js';
export type { BackendInfo, KmuUser } from './backend/backend.js';

export interface KeyPairOptions {
  label: string;
  id?: string;
  /** -nex: the private key cannot be extracted. */
  nex?: boolean;
  /** -sess: both halves live only as long as this Kmu. */
  sess?: boolean;
  users?: number[];
  mValue?: number;
  minSrv?: number;
  timeout?: number;
  attest?: boolean;
}

export class Kmu {
  private constructor(private readonly session: KmuSession) {}

  static async open(options: KmuOptions = {}): Promise<Kmu> {
    const session = new KmuSession(options);
    await session.connect();
    return new Kmu(session);
  }

  /** Any command by its kmu name with typed options, e.g. run('findKey', { label: 'x' }). */
  run(command: string, options: object = {}): Promise<CommandResult<any>> {
    return this.session.run(command, options as Record<string, unknown>);
  }

  async info(): Promise<BackendInfo> {
    return (await this.session.connect()).backend.info();
  }

  async loginHSM(o: { user: string; password: string; userType?: string }): Promise<void> {
    await this.run('loginHSM', { userType: o.userType ?? 'CU', user: o.user, password: o.password });
  }

  async logoutHSM(): Promise<void> {
    await this.run('logoutHSM');
  }

  async genECCKeyPair(o: KeyPairOptions & { curve: number | string }): Promise<GenECCKeyPairData> {
    return (await this.run('genECCKeyPair', o)).data;
  }

  async genDSAKeyPair(o: KeyPairOptions & { modulusBits?: 2048 }): Promise<GenDSAKeyPairData> {
    return (await this.run('genDSAKeyPair', { modulusBits: 2048, ...o })).data;
  }

  async findKey(
    o: { cls?: number; keyType?: number; label?: string; id?: string; sess?: 0 | 1; users?: number[]; modulusFile?: string; kcv?: string } = {},
  ): Promise<number[]> {
    return (await this.run('findKey', o)).data.handles;
  }

  async getAttribute(o: { handle: number; attribute: number; out?: string }): Promise<GetAttributeData> {
    return (await this.run('getAttribute', o)).data;
  }

  async listECCCurveIds(): Promise<ListECCCurveIdsData> {
    return (await this.run('listECCCurveIds')).data;
  }

  /**
   * kmu11's batch mode for programs: kmu command lines (`genECCKeyPair -i 2 -l a`), up to
   * `parallel` at once on sessions of their own under the same dependency rule as
   * `kmu11 --parallel` (README). Results in input order; failed lines give their failure result
   * (code ≠ 0, data.error) instead of throwing, as in a batch file.
   */
  async batch(lines: Iterable<string> | AsyncIterable<string>, o: { parallel?: number } = {}): Promise<CommandResult<any>[]> {
    const parallel = o.parallel ?? 1;
    if (!Number.isInteger(parallel) || parallel < 1 || parallel > 64) throw new UsageError('parallel must be a whole number from 1 to 64');
    const results: CommandResult<any>[] = [];
    const collect: Output = {
      result: (r) => void results.push(r),
      syntax: (command, syntax) => void results.push({ command, op: command, code: 0, warnings: [], data: { syntax } }),
      echo: () => undefined,
      fatal: () => undefined,
    };
    const source = (async function* () {
      yield* lines;
    })();
    await runBatchLines(this.session, source, collect, parallel);
    return results;
  }

  async close(): Promise<void> {
    await this.session.close();
  }
}
