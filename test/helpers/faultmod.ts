// The fault-injecting PKCS#11 module (test/fixtures/faultmod/faultmod.c): SoftHSM behind a
// wrapper that fails, delays or crashes chosen calls and counts them. See faultmod.c's header
// for the variables; these helpers build it and spell them.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const REPO = resolve(import.meta.dirname, '../..');

let built: string | undefined;

/** Path of build/faultmod/libp11fault.so, (re)built first when its sources changed. */
export function faultModule(): string {
  built ??= execFileSync('bash', [join(REPO, 'scripts/build-faultmod.sh')], { encoding: 'utf8' }).trim();
  return built;
}

export interface FaultOptions {
  /** real module (default: SoftHSM) */
  module?: string;
  delayUs?: number;
  /** [function, k (1-based, or '*'), CK_RV as name or number] */
  fail?: Array<[string, number | '*', string | number]>;
  crash?: Array<[string, number]>;
  hugeLen?: Array<[string, number | '*']>;
  /** show session and object handles above 2^53 */
  highHandles?: boolean;
  control?: string;
  counts?: string;
  /** the benchmark's networked-HSM stand-in: own name, own server-side write lock */
  remote?: boolean;
}

/** The P11FAULT_* variables for `opts`. */
export function faultEnv(opts: FaultOptions): Record<string, string> {
  const env: Record<string, string> = {};
  if (opts.module) env.P11FAULT_MODULE = opts.module;
  if (opts.delayUs !== undefined) env.P11FAULT_DELAY_US = String(opts.delayUs);
  if (opts.fail?.length) env.P11FAULT_FAIL = opts.fail.map((f) => f.join(':')).join(',');
  if (opts.crash?.length) env.P11FAULT_CRASH = opts.crash.map((f) => f.join(':')).join(',');
  if (opts.hugeLen?.length) env.P11FAULT_HUGE_LEN = opts.hugeLen.map((f) => f.join(':')).join(',');
  if (opts.highHandles) env.P11FAULT_HANDLES = 'high';
  if (opts.control) env.P11FAULT_CONTROL = opts.control;
  if (opts.counts) env.P11FAULT_COUNTS = opts.counts;
  if (opts.remote) env.P11FAULT_REMOTE = '1';
  return env;
}

/** Rewrites a control file (read by the module on its next call; counts restart from here). */
export function writeFaultControl(path: string, opts: FaultOptions): void {
  const lines = Object.entries(faultEnv(opts)).map(([k, v]) => `${k}=${v}`);
  // A nonce makes every write a change, so the counts restart even for the same faults.
  writeFileSync(path, [...lines, `NONCE=${process.hrtime.bigint()}`, ''].join('\n'));
}

/** The counts file as { C_Fn: calls }; empty when the module has not written it. */
/** [function, k] for every call of a counted run; `sample`: the first and last call of each function. */
export function faultsOf(counts: Record<string, number>, sample = false): Array<[string, number]> {
  return Object.entries(counts).flatMap(([fn, n]) =>
    sample ? [...new Set([1, n])].map((k): [string, number] => [fn, k]) : Array.from({ length: n }, (_, i): [string, number] => [fn, i + 1]),
  );
}

export function readFaultCounts(path: string): Record<string, number> {
  if (!existsSync(path)) return {};
  const counts: Record<string, number> = {};
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const [fn, n] = line.split(' ');
    if (fn && n) counts[fn] = Number(n);
  }
  return counts;
}
