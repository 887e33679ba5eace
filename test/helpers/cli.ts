// Runs the built CLI (dist/cli/main.js) as operators do: a child process with its own
// KMU11_HOME (the embedded token) or KMU11_MODULE/KMU11_TOKEN (a generic token).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

export interface Run {
  stdout: string;
  stderr: string;
  status: number | null;
}

export function kmu11(args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string; cwd?: string } = {}): Run {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    env: { ...process.env, ...opts.env },
    input: opts.input ?? '',
    cwd: opts.cwd,
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { stdout: r.stdout, stderr: r.stderr, status: r.status };
}

export interface Started {
  child: ChildProcess;
  /** Settles once the process has exited and its output has been read. */
  done: Promise<Run>;
  /** Whether it has exited yet. */
  exited(): boolean;
}

/** The CLI started without waiting for it: two at once, a kill, a lock held meanwhile. */
export function startKmu11(args: string[], opts: { env?: NodeJS.ProcessEnv } = {}): Started {
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...opts.env } });
  let stdout = '';
  let stderr = '';
  let exited = false;
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<Run>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (status) => {
      exited = true;
      resolve({ stdout, stderr, status });
    });
  });
  return { child, done, exited: () => exited };
}

/** A fresh embedded home (created by kmu11 on first use). */
export function makeHome(): { home: string; env: NodeJS.ProcessEnv; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'kmu11-home-'));
  const home = join(dir, 'home');
  const env: NodeJS.ProcessEnv = { KMU11_HOME: home, KMU11_MODULE: '', KMU11_TOKEN: '', KMU11_CONFIG: '', SOFTHSM2_CONF: '' };
  return { home, env, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export const LOGIN = ['loginHSM', '-u', 'CU', '-s', 'crypto_user', '-p', 'password'];

/** Handles from "public key handle: 12    private key handle: 14". */
export function pairHandles(stdout: string): { pub: number; priv: number } {
  const m = /public key handle: (\d+)\s+private key handle: (\d+)/.exec(stdout);
  if (!m) throw new Error(`no key handles in:\n${stdout}`);
  return { pub: Number(m[1]), priv: Number(m[2]) };
}
