// A second real PKCS#11 token: tpm2-pkcs11 on a software TPM (swtpm on 127.0.0.1), reached
// through tpm2-abrmd on a private D-Bus session bus, the token made with tpm2_ptool. Every
// daemon is stopped by its pid. Installed by scripts/setup.sh --tests.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const TPM2_MODULE = ['/usr/lib/x86_64-linux-gnu/pkcs11/libtpm2_pkcs11.so', '/usr/lib/aarch64-linux-gnu/pkcs11/libtpm2_pkcs11.so'].find(existsSync) ?? '';

export interface Tpm2Token {
  module: string;
  label: string;
  userPin: string;
  /** Environment for processes that use the token (TCTI, store, D-Bus address). */
  env: NodeJS.ProcessEnv;
  stop(): void;
}

const sleep = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

export function startTpm2Token(label = 'kmu11-tpm'): Tpm2Token {
  if (!TPM2_MODULE) throw new Error('libtpm2_pkcs11.so not found: run scripts/setup.sh --tests');
  const dir = mkdtempSync(join(tmpdir(), 'kmu11-tpm2-'));
  const state = join(dir, 'state');
  const store = join(dir, 'store');
  mkdirSync(state);
  mkdirSync(store);
  const pids: number[] = [];
  const stop = () => {
    for (const pid of pids.reverse()) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        /* already gone */
      }
    }
    pids.length = 0;
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const port = 20000 + Math.floor(Math.random() * 20000) * 2;
    execFileSync('swtpm', [
      'socket', '--tpm2', '--tpmstate', `dir=${state}`,
      '--server', `type=tcp,port=${port},bindaddr=127.0.0.1`, '--ctrl', `type=tcp,port=${port + 1},bindaddr=127.0.0.1`,
      '--flags', 'not-need-init,startup-clear', '--daemon', '--pid', `file=${join(dir, 'swtpm.pid')}`, '--log', `file=${join(dir, 'swtpm.log')}`,
    ]);
    pids.push(Number(readFileSync(join(dir, 'swtpm.pid'), 'utf8')));
    const bus = join(dir, 'bus');
    const d = spawnSync('dbus-daemon', ['--session', `--address=unix:path=${bus}`, '--fork', '--print-pid'], { encoding: 'utf8' });
    if (d.status !== 0) throw new Error(`dbus-daemon: ${d.stderr}`);
    pids.push(Number(d.stdout.trim()));
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      DBUS_SESSION_BUS_ADDRESS: `unix:path=${bus}`,
      TPM2TOOLS_TCTI: 'tabrmd:bus_type=session',
      TPM2_PKCS11_TCTI: 'tabrmd:bus_type=session',
      TPM2_PKCS11_STORE: store,
    };
    // A resource manager is needed: tpm2_ptool straight on swtpm runs out of object contexts.
    const log = openSync(join(dir, 'abrmd.log'), 'a');
    const abrmd = spawn('tpm2-abrmd', ['--session', '--allow-root', '--flush-all', `--tcti=swtpm:host=127.0.0.1,port=${port}`], {
      env,
      detached: true,
      stdio: ['ignore', log, log],
    });
    abrmd.unref();
    pids.push(abrmd.pid!);
    for (let i = 0; i < 100; i++) {
      if (spawnSync('tpm2_getcap', ['properties-fixed'], { env, stdio: 'ignore' }).status === 0) break;
      sleep(100);
    }
    const userPin = '12345678';
    execFileSync('tpm2_ptool', ['init', `--path=${store}`], { env, stdio: 'pipe' });
    execFileSync('tpm2_ptool', ['addtoken', '--pid=1', `--label=${label}`, '--sopin=87654321', `--userpin=${userPin}`, `--path=${store}`], { env, stdio: 'pipe' });
    return { module: TPM2_MODULE, label, userPin, env, stop };
  } catch (e) {
    stop();
    throw e;
  }
}
