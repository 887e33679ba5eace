// The embedded backend against the system's real SoftHSMv2: home layout and modes, token
// creation (once, even with two processes racing), PIN files usable by pkcs11-tool, and
// CloudHSM's login rules. SoftHSM reads SOFTHSM2_CONF once per process, so every home other
// than this file's main one is opened in a child process.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KmuError, SetupError } from '../src/kmu/errors.js';
import { RC } from '../src/kmu/returnCodes.js';
import type { Backend } from '../src/backend/backend.js';
import { changePassword, embeddedPaths, listUsers, openBackend, resetPassword } from '../src/backend/index.js';
import { withLock } from '../src/backend/lock.js';
import { startTime } from '../src/backend/proc.js';
import { CKA, CKM, type Session } from '../src/p11/index.js';
import { cleanEnv, runChild } from './helpers/child.js';
import { softhsmModule } from './helpers/softhsm.js';

const REPO = resolve(import.meta.dirname, '..');

/** Whether the token lets this session make a private object, i.e. the PKCS#11 user is logged in. */
async function tokenLoggedIn(session: Session): Promise<boolean> {
  try {
    const key = await session.generateKey({ mechanism: CKM.AES_KEY_GEN }, [
      { type: CKA.TOKEN, value: false },
      { type: CKA.PRIVATE, value: true },
      { type: CKA.VALUE_LEN, value: 16 },
    ]);
    await session.destroyObject(key);
    return true;
  } catch (e) {
    if ((e as { ckr?: string }).ckr === 'CKR_USER_NOT_LOGGED_IN') return false;
    throw e;
  }
}

const mode = (p: string) => statSync(p).mode & 0o777;

/** Token directories SoftHSM made under a tokendir. */
function tokenDirs(tokens: string): string[] {
  return readdirSync(tokens).filter((d) => existsSync(join(tokens, d, 'token.object')));
}

/** The initialized tokens softhsm2-util sees with a given config (an oracle independent of kmu11). */
function softhsmLabels(conf: string): string[] {
  const out = execFileSync('softhsm2-util', ['--show-slots'], { env: { ...process.env, SOFTHSM2_CONF: conf }, encoding: 'utf8' });
  const labels: string[] = [];
  for (const block of out.split(/^Slot /m)) {
    if (!/Initialized:\s+yes/.test(block)) continue;
    const m = /Label:\s+(.*?)\s*$/m.exec(block);
    if (m) labels.push(m[1]!);
  }
  return labels;
}

const roots: string[] = [];
function tempRoot(): string {
  const d = mkdtempSync(join(tmpdir(), 'kmu11-embedded-'));
  roots.push(d);
  return d;
}
afterAll(() => {
  for (const d of roots) rmSync(d, { recursive: true, force: true });
});

async function expectKmu(p: Promise<unknown>, code: number): Promise<KmuError> {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(e, `expected KmuError 0x${code.toString(16)}`).toBeInstanceOf(KmuError);
  expect((e as KmuError).code).toBe(code);
  return e as KmuError;
}

// The one home this process's SoftHSM serves; it sits one level below a fresh directory so
// that "mkdir -p" has two levels to create.
let mainHome: string;
beforeAll(() => {
  mainHome = join(tempRoot(), 'a', 'kmu11-home');
});

describe('embedded backend: first use', () => {
  let home: string;
  let backend: Backend;

  beforeAll(async () => {
    home = mainHome;
    expect(existsSync(home)).toBe(false);
    backend = await openBackend({ home }, cleanEnv());
  });
  afterAll(async () => {
    await backend?.close();
  });

  it('creates the token labelled kmu11 and reports where it lives', async () => {
    const info = await backend.info();
    const paths = embeddedPaths(home);
    expect(backend.kind).toBe('embedded');
    expect(info.backend).toBe('embedded');
    expect(info.token.label).toBe('kmu11');
    expect(info.modulePath).toBe(softhsmModule());
    expect(info.library.manufacturerID).toMatch(/SoftHSM/);
    expect(info).toMatchObject({ home, softhsmConf: paths.softhsmConf, userPinFile: paths.userPin, soPinFile: paths.soPin });
    expect(info.token.flags & 0x8).toBe(0x8); // CKF_USER_PIN_INITIALIZED
    expect(backend.capabilities).toEqual({ sharing: true, quorum: true, servers: 1, attestation: true });
    expect(backend.user).toBeNull();
    expect(softhsmLabels(paths.softhsmConf)).toEqual(['kmu11']);
  });

  it('makes every directory 0700 and every file 0600', () => {
    const paths = embeddedPaths(home);
    expect(mode(join(home, '..'))).toBe(0o700);
    for (const d of [home, paths.tokens, ...tokenDirs(paths.tokens).map((t) => join(paths.tokens, t))]) {
      expect(mode(d), d).toBe(0o700);
    }
    for (const f of [paths.softhsmConf, paths.soPin, paths.userPin, paths.users]) expect(mode(f), f).toBe(0o600);
    expect(existsSync(paths.lock)).toBe(false);
    expect(readdirSync(home).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  it('writes SoftHSM config, random PINs and the two first CloudHSM users', async () => {
    const paths = embeddedPaths(home);
    const conf = readFileSync(paths.softhsmConf, 'utf8');
    expect(conf).toContain(`directories.tokendir = ${paths.tokens}\n`);
    expect(conf).toContain('objectstore.backend = file\n');
    expect(conf).toContain('log.level = ERROR\n');
    expect(conf).toContain('slots.removable = false\n');
    const so = readFileSync(paths.soPin, 'utf8').trim();
    const user = readFileSync(paths.userPin, 'utf8').trim();
    expect(so).toMatch(/^[0-9a-f]{32}$/);
    expect(user).toMatch(/^[0-9a-f]{32}$/);
    expect(so).not.toBe(user);
    const users = readFileSync(paths.users, 'utf8');
    expect(users).not.toContain('"password"');
    expect(users).toMatch(/\$scrypt\$ln=12,r=8,p=1\$/); // the cost README explains (PIN file beside it)
    expect(await listUsers(home)).toEqual([
      { id: 1, type: 'CO', name: 'admin', mofnPubKey: false, loginFailureCnt: 0, twoFA: false },
      { id: 2, type: 'CU', name: 'crypto_user', mofnPubKey: false, loginFailureCnt: 0, twoFA: false },
    ]);
    expect(await backend.listUsers!()).toEqual(await listUsers(home));
  });

  it('PIN files work with pkcs11-tool', () => {
    const paths = embeddedPaths(home);
    const pin = readFileSync(paths.userPin, 'utf8').trim();
    const env = { ...process.env, SOFTHSM2_CONF: paths.softhsmConf };
    // Throws if pkcs11-tool exits non-zero.
    execFileSync('pkcs11-tool', ['--module', softhsmModule(), '--token-label', 'kmu11', '--login', '--pin', pin, '-O'], { env, stdio: 'pipe' });
    const wrong = () =>
      execFileSync('pkcs11-tool', ['--module', softhsmModule(), '--token-label', 'kmu11', '--login', '--pin', '0000', '-O'], { env, stdio: 'pipe' });
    expect(wrong).toThrow();
  });
});

describe('embedded backend: loginHSM', () => {
  let home: string;
  let backend: Backend;

  beforeAll(async () => {
    home = mainHome;
    backend = await openBackend({ home }, cleanEnv());
    backend.takeWarnings();
  });
  afterAll(async () => {
    await backend?.close();
  });

  it('logs in crypto_user with the default password, warns once, logs out', async () => {
    expect(await backend.login('CU', 'crypto_user', 'password')).toEqual({ id: 2, name: 'crypto_user', type: 'CU' });
    expect(backend.user).toEqual({ id: 2, name: 'crypto_user', type: 'CU' });
    expect(backend.takeWarnings()).toEqual([
      'Warning: user crypto_user still has the default password; change it with: kmu11 passwd crypto_user',
    ]);
    expect(backend.takeWarnings()).toEqual([]);
    // The token itself is logged in: a private object can be created on the command session.
    expect(await tokenLoggedIn(backend.session)).toBe(true);
    await expectKmu(backend.login('CU', 'crypto_user', 'password'), RC.ALREADY_LOGGED_IN);
    await backend.logout();
    expect(backend.user).toBeNull();
    expect(await tokenLoggedIn(backend.session)).toBe(false);
    await expectKmu(backend.logout(), RC.NOT_LOGGED_IN);
  });

  it('leaves the token logged out before loginHSM', async () => {
    expect(await tokenLoggedIn(backend.session)).toBe(false);
  });

  it('refuses every user type but CU with 0xdb', async () => {
    for (const t of ['CO', 'AU', 'PCO', 'PRECO', 'XYZ', '']) {
      const e = await expectKmu(backend.login(t, 'admin', 'password'), RC.INVALID_USER_TYPE);
      expect(e.message).toBe('HSM Error: Invalid User Type.');
    }
    expect(backend.user).toBeNull();
  });

  it('refuses a wrong password or an unknown or non-CU name with 0xa5', async () => {
    await expectKmu(backend.login('CU', 'crypto_user', 'wrong-password'), RC.LOGIN_FAILED);
    await expectKmu(backend.login('CU', 'nobody', 'password'), RC.LOGIN_FAILED);
    await expectKmu(backend.login('CU', 'admin', 'password'), RC.LOGIN_FAILED);
    expect((await listUsers(home)).find((u) => u.name === 'crypto_user')!.loginFailureCnt).toBe(1);
    await backend.login('CU', 'crypto_user', 'password');
    expect((await listUsers(home)).find((u) => u.name === 'crypto_user')!.loginFailureCnt).toBe(0);
    await backend.logout();
    backend.takeWarnings();
  });

  it('changePassword: the new password logs in without a warning, the old one no longer does', async () => {
    await expectKmu(changePassword(home, 'crypto_user', 'not-it', 'n3w-secret'), RC.LOGIN_FAILED);
    await expect(changePassword(home, 'crypto_user', 'password', 'short')).rejects.toThrow(/7 to 32 characters/);
    await changePassword(home, 'crypto_user', 'password', 'n3w-secret');
    await expectKmu(backend.login('CU', 'crypto_user', 'password'), RC.LOGIN_FAILED);
    await backend.login('CU', 'crypto_user', 'n3w-secret');
    expect(backend.takeWarnings()).toEqual([]);
    await backend.logout();
    expect(readFileSync(embeddedPaths(home).users, 'utf8')).not.toContain('n3w-secret');
    expect(mode(embeddedPaths(home).users)).toBe(0o600);
  });

  it('locks a user after five wrong passwords, until a CO resets the password', async () => {
    for (let i = 0; i < 5; i++) await expectKmu(backend.login('CU', 'crypto_user', `bad-${i}`), RC.LOGIN_FAILED);
    await expectKmu(backend.login('CU', 'crypto_user', 'n3w-secret'), RC.ACCOUNT_LOCKED);
    await expectKmu(changePassword(home, 'crypto_user', 'n3w-secret', 'other-secret'), RC.ACCOUNT_LOCKED);
    expect((await listUsers(home)).find((u) => u.name === 'crypto_user')!.loginFailureCnt).toBe(5);
    expect(backend.user).toBeNull();
    await expectKmu(resetPassword(home, 'crypto_user', 'n3w-secret', 'crypto_user', 'x-secret-1'), RC.ACCOUNT_LOCKED);
    await expectKmu(resetPassword(home, 'admin', 'wrong-pw', 'crypto_user', 'x-secret-1'), RC.LOGIN_FAILED);
    await resetPassword(home, 'admin', 'password', 'crypto_user', 'x-secret-1');
    await backend.login('CU', 'crypto_user', 'x-secret-1');
    await backend.logout();
  });

  it('a second backend in the same process joins the token login and leaves it intact', async () => {
    const other = await openBackend({ home }, cleanEnv());
    try {
      await backend.login('CU', 'crypto_user', 'x-secret-1');
      await other.login('CU', 'crypto_user', 'x-secret-1');
      await other.logout();
      expect(backend.user).not.toBeNull();
      expect(await tokenLoggedIn(backend.session)).toBe(true);
      await other.close();
      expect(await tokenLoggedIn(backend.session)).toBe(true);
      await backend.logout();
      expect(await tokenLoggedIn(backend.session)).toBe(false);
    } finally {
      await other.close();
    }
  });
});

describe('embedded backend: reuse, repair and races', () => {
  it('a second open reuses the token (in this process and in another)', async () => {
    const home = mainHome;
    const b1 = await openBackend({ home }, cleanEnv());
    const serial = (await b1.info()).token.serialNumber;
    await b1.close();
    await b1.close(); // idempotent
    const b2 = await openBackend({ home }, cleanEnv());
    expect((await b2.info()).token.serialNumber).toBe(serial);
    await b2.close();
    const child = await runChild(
      `const b = await kmu.openBackend({ home: input.home });
       const info = await b.info();
       await b.login('CU', 'crypto_user', 'x-secret-1');
       await b.close();
       return info.token;`,
      { home },
    );
    expect(child.serialNumber).toBe(serial);
    const paths = embeddedPaths(home);
    expect(tokenDirs(paths.tokens)).toHaveLength(1);
    expect(softhsmLabels(paths.softhsmConf)).toEqual(['kmu11']);
  });

  it('two processes opening a fresh home at once make one token', async () => {
    for (let round = 0; round < 3; round++) {
      const home = join(tempRoot(), 'race');
      const startAt = Date.now() + 1500;
      const body = `
        while (Date.now() < input.startAt) await new Promise((r) => setTimeout(r, 1));
        const b = await kmu.openBackend({ home: input.home });
        const info = await b.info();
        await b.login('CU', 'crypto_user', 'password');
        await b.close();
        return info.token;`;
      const results = await Promise.all([runChild(body, { home, startAt }), runChild(body, { home, startAt })]);
      for (const r of results) expect(r.error).toBeUndefined();
      expect(results[0].serialNumber).toBe(results[1].serialNumber);
      const paths = embeddedPaths(home);
      expect(tokenDirs(paths.tokens)).toHaveLength(1);
      expect(softhsmLabels(paths.softhsmConf)).toEqual(['kmu11']);
      expect(existsSync(paths.lock)).toBe(false);
    }
  });

  it('reads the token info while another process logs in and out (SoftHSM rewrites token.object on C_Login)', async () => {
    // Without token.lock around C_GetTokenInfo the reader failed with CKR_GENERAL_ERROR within
    // 2 s in 4 of 4 runs (after about 500 to 4,700 reads).
    const home = join(tempRoot(), 'readers');
    await runChild('await (await kmu.openBackend({ home: input.home })).close(); return {};', { home });
    const startAt = Date.now() + 1500;
    const body = `
      while (Date.now() < input.startAt) await new Promise((r) => setTimeout(r, 1));
      const b = await kmu.openBackend({ home: input.home });
      let n = 0;
      try {
        for (const end = Date.now() + 2000; Date.now() < end; n++) {
          if (input.role === 'login') {
            await b.login('CU', 'crypto_user', 'password');
            await b.logout();
          } else await b.info();
        }
      } finally {
        await b.close();
      }
      return { n };`;
    const [logins, reads] = await Promise.all([
      runChild(body, { home, startAt, role: 'login' }),
      runChild(body, { home, startAt, role: 'read' }),
    ]);
    expect(logins.error).toBeUndefined();
    expect(reads.error).toBeUndefined();
    expect(logins.n).toBeGreaterThan(10);
    expect(reads.n).toBeGreaterThan(10);
  });

  it('KMU11_TOKEN names the embedded token', async () => {
    const home = join(tempRoot(), 'home');
    const r = await runChild(
      `const b = await kmu.openBackend({ home: input.home });
       const info = await b.info();
       await b.close();
       return info.token;`,
      { home },
      cleanEnv({ KMU11_TOKEN: 'my-token' }),
    );
    expect(r.label).toBe('my-token');
    expect(softhsmLabels(embeddedPaths(home).softhsmConf)).toEqual(['my-token']);
  });

  it('finishes a token whose user PIN was never set (interrupted first run)', async () => {
    const home = join(tempRoot(), 'home');
    const paths = embeddedPaths(home);
    mkdirSync(paths.tokens, { recursive: true, mode: 0o700 });
    writeFileSync(paths.softhsmConf, `directories.tokendir = ${paths.tokens}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`, { mode: 0o600 });
    writeFileSync(paths.soPin, 'feedfacefeedfacefeedfacefeedface\n', { mode: 0o600 });
    // What a crash between C_InitToken and C_InitPIN leaves: an initialized token without a user PIN.
    execFileSync('pkcs11-tool', ['--module', softhsmModule(), '--init-token', '--label', 'kmu11', '--so-pin', 'feedfacefeedfacefeedfacefeedface', '--slot-index', '0'], {
      env: { ...process.env, SOFTHSM2_CONF: paths.softhsmConf },
      stdio: 'pipe',
    });
    const r = await runChild(
      `const b = await kmu.openBackend({ home: input.home });
       const info = await b.info();
       const u = await b.login('CU', 'crypto_user', 'password');
       await b.close();
       return { flags: info.token.flags, u };`,
      { home },
    );
    expect(r.error).toBeUndefined();
    expect(r.flags & 0x8).toBe(0x8);
    expect(r.u).toEqual({ id: 2, name: 'crypto_user', type: 'CU' });
    expect(tokenDirs(paths.tokens)).toHaveLength(1);
    expect(readFileSync(paths.userPin, 'utf8').trim()).toMatch(/^[0-9a-f]{32}$/);
  });

  it('refuses a home or PIN file open to others, naming the fix (as ssh), and a token whose user.pin is gone', async () => {
    const home = join(tempRoot(), 'home');
    const paths = embeddedPaths(home);
    await runChild(`const b = await kmu.openBackend({ home: input.home }); await b.close(); return {};`, { home });
    const open = () => runChild(`const b = await kmu.openBackend({ home: input.home }); await b.close(); return {};`, { home });
    chmodSync(home, 0o755);
    expect((await open()).error).toMatchObject({
      name: 'SetupError',
      message: `${home} is mode 0755: it holds the token's secrets and must be private; fix it with: chmod 700 ${home}`,
    });
    expect(mode(home)).toBe(0o755); // refused, not changed behind the user's back
    chmodSync(home, 0o700);
    for (const [path, loose] of [
      [paths.userPin, 0o644],
      [paths.soPin, 0o640],
      [paths.users, 0o604],
      [paths.tokens, 0o750],
    ] as const) {
      chmodSync(path, loose);
      const r = await open();
      expect(r.error?.message, path).toMatch(new RegExp(`^${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is mode 0${loose.toString(8)}: .*fix it with: chmod (600|700) `));
      chmodSync(path, path === paths.tokens ? 0o700 : 0o600);
    }
    expect((await open()).error).toBeUndefined();

    renameSync(paths.userPin, paths.userPin + '.bak');
    const gone = await runChild(`const b = await kmu.openBackend({ home: input.home }); await b.close(); return {};`, { home });
    expect(gone.error).toMatchObject({ name: 'SetupError' });
    expect(gone.error.message).toBe(`cannot read ${paths.userPin}: missing`);
    expect(existsSync(paths.userPin)).toBe(false); // never replaced by a new random PIN
    expect(tokenDirs(paths.tokens)).toHaveLength(1);
  });
});

describe('home lock', () => {
  it('breaks a lock left by a process that is gone', async () => {
    const home = join(tempRoot(), 'home');
    const paths = embeddedPaths(home);
    mkdirSync(home, { mode: 0o700 });
    const deadPid = spawnSync('true').pid!;
    writeFileSync(paths.lock, `${deadPid} ${hostname()} ${Date.now()}\n`, { mode: 0o600 });
    const r = await runChild(`const b = await kmu.openBackend({ home: input.home }); const t = (await b.info()).token; await b.close(); return t;`, { home });
    expect(r.label).toBe('kmu11');
    expect(existsSync(paths.lock)).toBe(false);
  });

  it('breaks a lock whose pid now runs another process (this one included), and waits for the process that wrote it', async () => {
    const lock = join(tempRoot(), 'reused.lock');
    // This very pid, written by an earlier process (start time 1): a container restarted after kill -9.
    writeFileSync(lock, `${process.pid} ${hostname()} ${Date.now()} 1\n`);
    expect(await withLock(lock, async () => 'taken', { timeoutMs: 300 })).toBe('taken');
    expect(existsSync(lock)).toBe(false);
    const live = spawn('sleep', ['30']);
    try {
      await new Promise((r) => live.once('spawn', r));
      writeFileSync(lock, `${live.pid} ${hostname()} ${Date.now()} 1\n`);
      expect(await withLock(lock, async () => 'taken', { timeoutMs: 300 })).toBe('taken');
      writeFileSync(lock, `${live.pid} ${hostname()} ${Date.now()} ${startTime(live.pid!)}\n`);
      const r = await withLock(lock, async () => 'no', { timeoutMs: 300 }).catch((e: unknown) => e);
      expect((r as Error).message).toBe(`${lock} is held by process ${live.pid} on ${hostname()}; if no kmu11 is running there, remove the file`);
      expect(existsSync(lock)).toBe(true);
    } finally {
      live.kill('SIGKILL');
      await new Promise((r) => live.once('exit', r));
    }
  });

  it('waits for a live holder, then gives up with one line naming the lock file', async () => {
    const lock = join(tempRoot(), 'lock');
    const order: string[] = [];
    let waiter: Promise<void> | undefined;
    await withLock(lock, async () => {
      waiter = withLock(lock, async () => void order.push('second'), { timeoutMs: 5000 });
      const late = await withLock(lock, async () => 'no', { timeoutMs: 100 }).catch((e: unknown) => e);
      expect(late).toBeInstanceOf(SetupError);
      expect((late as Error).message).toBe(
        `${lock} is held by process ${process.pid} on ${hostname()}; if no kmu11 is running there, remove the file`,
      );
      order.push('first');
    });
    await waiter;
    expect(order).toEqual(['first', 'second']);
    expect(existsSync(lock)).toBe(false);
  });
});

describe('embedded backend: SoftHSM missing', () => {
  const LINE = 'kmu11: SoftHSMv2 not found (looked in /nonexistent); install it with: apt-get install softhsm2';

  it('is one SetupError line naming the Debian package, and nothing is created', async () => {
    const home = join(tempRoot(), 'home');
    const e = await openBackend({ home }, cleanEnv({ KMU11_SOFTHSM_MODULE: '/nonexistent' })).then(
      () => undefined,
      (x: unknown) => x,
    );
    expect(e).toBeInstanceOf(SetupError);
    // The CLI prints SetupError messages as "kmu11: <message>".
    expect(`kmu11: ${(e as Error).message}`).toBe(LINE);
    expect(existsSync(home)).toBe(false);
  });

  it('the CLI prints exactly that line and exits 2', () => {
    const cli = join(REPO, 'dist/cli/main.js');
    const home = join(tempRoot(), 'home');
    const r = spawnSync(process.execPath, [cli, 'singlecmd', 'loginHSM', '-u', 'CU', '-s', 'crypto_user', '-p', 'password'], {
      env: cleanEnv({ KMU11_HOME: home, KMU11_SOFTHSM_MODULE: '/nonexistent' }),
      encoding: 'utf8',
    });
    expect(r.stderr).toBe(LINE + '\n');
    expect(r.stdout).toBe('');
    expect(r.status).toBe(2);
  });
});
