// -min_srv / -timeout: how many HSMs a backend spans, and waiting for a new key to reach them.
//
// A single token is one HSM. CloudHSM's Client SDK 5 has no per-call server count: with its key
// availability check on (the default), a new key is usable only once it exists on 2 HSMs, so
// -min_srv up to 2 is met by the SDK itself; above that kmu11 asks CloudHSM CLI for the key's
// cluster-coverage until it is "full" (on every HSM the client knows) or -timeout passes.
import { readFileSync } from 'node:fs';
import { KmuError, SetupError } from '../kmu/errors.js';
import { RC } from '../kmu/returnCodes.js';

export const CLOUDHSM_CLIENT_CONFIG = '/opt/cloudhsm/etc/cloudhsm-pkcs11.cfg';

export interface ClientConfig {
  /** Enabled HSM addresses the client configuration names (all clusters). */
  servers: number;
  keyAvailabilityCheck: boolean;
}

/**
 * Reads SDK 5's client configuration (JSON written by configure-pkcs11): every
 * `clusters[].cluster.servers[]` entry not marked `"enable": false`, and
 * `disable_key_availability_check` (top level or per cluster).
 */
export function readClientConfig(path: string): ClientConfig {
  let data: any;
  try {
    data = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new SetupError(`cannot read CloudHSM client configuration ${path}: ${code === 'ENOENT' ? 'no such file' : code ?? 'not valid JSON'}`);
  }
  const clusters: any[] = Array.isArray(data?.clusters) ? data.clusters : [];
  let servers = 0;
  let disabled = data?.disable_key_availability_check === true;
  for (const c of clusters) {
    const list: any[] = Array.isArray(c?.cluster?.servers) ? c.cluster.servers : [];
    servers += list.filter((s) => s && s.enable !== false).length;
    if (c?.cluster?.disable_key_availability_check === true || c?.disable_key_availability_check === true) disabled = true;
  }
  if (servers === 0) throw new SetupError(`CloudHSM client configuration ${path} names no HSM (clusters[].cluster.servers)`);
  return { servers, keyAvailabilityCheck: !disabled };
}

/** -min_srv above what the backend spans: kmu's refusal, before anything is made. */
export function checkMinSrv(minSrv: number | undefined, servers: number, kind: string): void {
  if (minSrv !== undefined && minSrv > servers)
    throw new KmuError(RC.FEATURE_UNAVAILABLE, {
      detail: `-min_srv ${minSrv}: the ${kind} backend spans ${servers} HSM${servers === 1 ? '' : 's'}; the key could never be synchronized to ${minSrv}`,
    });
}

export interface WaitOptions {
  minSrv: number;
  /** Seconds; undefined waits indefinitely (kmu's default). */
  timeout?: number;
  /** True once the key is on enough HSMs. */
  synced: () => Promise<boolean>;
  signal?: AbortSignal;
  intervalMs?: number;
  now?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

const defaultSleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

/**
 * Polls `synced` until it says yes. Throws KmuError when -timeout passes first (the page: "it is
 * not created" — the caller destroys the pair) or when the signal aborts.
 */
export async function waitForServers(o: WaitOptions): Promise<void> {
  const now = o.now ?? Date.now;
  const sleep = o.sleep ?? defaultSleep;
  const deadline = o.timeout === undefined ? Infinity : now() + o.timeout * 1000;
  for (;;) {
    if (o.signal?.aborted) throw new KmuError(RC.GENERAL_ERROR, { detail: 'interrupted while waiting for the key to synchronize' });
    if (await o.synced()) return;
    const left = deadline - now();
    if (left <= 0)
      throw new KmuError(RC.GENERAL_ERROR, {
        detail: `the key was not synchronized to ${o.minSrv} HSMs within ${o.timeout} seconds (-timeout); it was not created`,
      });
    await sleep(Math.min(o.intervalMs ?? 500, left), o.signal);
  }
}
