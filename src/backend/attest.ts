// -attest: kmu11 pins what it talks to and checks it before generating.
//
// Pinned: the SHA-256 of the PKCS#11 module file, the library info (manufacturer, description,
// version), the token info (manufacturer, model, serial, firmware and hardware versions) and, on
// cloudhsm, each HSM's identity and firmware from `cluster hsm-info`. The pins come from the
// config file ("attest": {...}) or are recorded in <home>/attest/<tag>.json the first time
// -attest (or `kmu11 attest`) runs; `kmu11 attest --repin` records them again after an upgrade.
// This proves the same library file and the same token/HSMs (as they describe themselves) are in
// use; it cannot prove the HSM firmware is untampered (a module reports what it likes).
import { createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import { join } from 'node:path';
import { SetupError } from '../kmu/errors.js';
import type { Backend } from './backend.js';
import { ensurePrivateDir, writeFileAtomic } from './fsutil.js';

export interface AttestFacts {
  module: { path: string; sha256: string };
  library: { manufacturerID: string; description: string; version: string };
  token: { manufacturerID: string; model: string; serialNumber: string; firmwareVersion: string; hardwareVersion: string };
  /** cloudhsm: `cluster hsm-info`, sorted by serial. */
  hsms?: Array<{ vendor: string; model: string; serial: string; hardware: string; firmware: string; firmwareId: string }>;
}

export type AttestPins = AttestFacts;

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Where a backend's recorded pins live in the home. */
function pinsPath(home: string, facts: Pick<AttestFacts, 'module' | 'token'>): string {
  const tag = createHash('sha256').update(`${facts.module.path}\0${facts.token.serialNumber}`).digest('hex').slice(0, 16);
  return join(home, 'attest', `${tag}.json`);
}

/** Every field where the facts differ from the pins, as "token.serialNumber" etc. */
export function mismatches(pins: AttestPins, facts: AttestFacts): string[] {
  const out: string[] = [];
  const cmp = (prefix: string, a: unknown, b: unknown) => {
    if (a !== null && typeof a === 'object' && b !== null && typeof b === 'object' && Array.isArray(a) === Array.isArray(b)) {
      for (const k of new Set([...Object.keys(a), ...Object.keys(b)]))
        cmp(prefix ? `${prefix}.${k}` : k, (a as any)[k], (b as any)[k]);
    } else if (JSON.stringify(a) !== JSON.stringify(b)) out.push(prefix);
  };
  cmp('', pins, facts);
  return out;
}

async function readPins(path: string): Promise<AttestPins | undefined> {
  try {
    return JSON.parse(await fs.readFile(path, 'utf8')) as AttestPins;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new SetupError(`cannot read attestation pins ${path}: ${(e as Error).message}`);
  }
}

export interface AttestResult {
  result: 'PASS' | 'FAIL' | 'PINNED';
  pinsFrom: 'config' | 'home';
  path?: string;
  differences: string[];
}

/**
 * Checks the backend against its pins. No pins yet (and none in the config): records them and
 * passes ("PINNED", trust on first use). `repin`: records the current facts over the old pins.
 */
export async function attest(backend: Backend, opts: { configPins?: AttestPins; repin?: boolean } = {}): Promise<AttestResult> {
  const facts = await backend.attestationFacts();
  if (opts.configPins && !opts.repin) {
    const differences = mismatches(opts.configPins, facts);
    return { result: differences.length ? 'FAIL' : 'PASS', pinsFrom: 'config', differences };
  }
  if (!backend.home) throw new SetupError('attestation pins need a home directory');
  const path = pinsPath(backend.home, facts);
  const pins = opts.repin ? undefined : await readPins(path);
  if (!pins) {
    await ensurePrivateDir(backend.home, []);
    await ensurePrivateDir(join(backend.home, 'attest'), []);
    await writeFileAtomic(path, JSON.stringify(facts, null, 2) + '\n');
    return { result: 'PINNED', pinsFrom: 'home', path, differences: [] };
  }
  const differences = mismatches(pins, facts);
  return { result: differences.length ? 'FAIL' : 'PASS', pinsFrom: 'home', path, differences };
}
