// Private files for kmu11's home: directories 0700, files 0600, every write atomic
// (temp file, fsync, rename, fsync of the directory) so a crash leaves the old file or the
// new one, never half of either.
import { randomBytes } from 'node:crypto';
import { constants, lstatSync, mkdirSync, promises as fs, readlinkSync, statfsSync, statSync, type Stats } from 'node:fs';
import { dirname, join, basename, resolve } from 'node:path';

export const DIR_MODE = 0o700;
export const FILE_MODE = 0o600;

/** The code of a Node.js system error ('ENOENT', 'EEXIST'…), if it is one. */
export function errno(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | undefined)?.code;
}

/** True when the path does not exist (ENOENT); rethrows anything else. */
export async function missing(path: string): Promise<boolean> {
  try {
    await fs.lstat(path);
    return false;
  } catch (e) {
    if (errno(e) === 'ENOENT') return true;
    throw e;
  }
}

/**
 * Tighten `path` to `mode` if group or others have any access. Returns a warning line when it
 * had to, so the user learns that something loosened kmu11's files.
 */
async function tightenMode(path: string, mode: number): Promise<string | undefined> {
  const st = await fs.stat(path);
  const actual = st.mode & 0o777;
  if ((actual & 0o077) === 0) return undefined;
  await fs.chmod(path, mode);
  return `Warning: ${path} was mode ${octal(actual)}; tightened to ${octal(mode)}`;
}

function octal(mode: number): string {
  return '0' + mode.toString(8).padStart(3, '0');
}

/** An error whose message is the reason alone (callers say which path), keeping the errno code. */
function fsError(code: string | undefined, reason: string): Error {
  return Object.assign(new Error(reason), { code });
}

const REASONS: Record<string, string> = {
  ENOENT: 'that file system does not let directories be made there',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on the device',
  ENAMETOOLONG: 'the path is too long',
  ELOOP: 'too many levels of symbolic links',
};

function reason(e: unknown): string {
  return REASONS[errno(e) ?? ''] ?? (e as Error).message;
}

/**
 * The directories mkdir -p would make for `path`, deepest last; throws for an existing part
 * that is a file or a dangling symbolic link.
 */
function missingDirs(path: string, stat: (p: string) => Stats | undefined, lstat: (p: string) => Stats | undefined): string[] {
  const todo: string[] = [];
  for (let p = resolve(path); ; p = dirname(p)) {
    const st = stat(p);
    if (st) {
      if (!st.isDirectory()) throw fsError('ENOTDIR', `${p} is not a directory`);
      break;
    }
    if (lstat(p)?.isSymbolicLink()) {
      let target = '?';
      try {
        target = readlinkSync(p);
      } catch {
        // shown as ?
      }
      throw fsError('ENOENT', `${p} is a symbolic link to ${target}, which does not exist`);
    }
    todo.unshift(p);
    if (dirname(p) === p) break;
  }
  return todo;
}

function statOrNot(fn: (p: string) => Stats): (p: string) => Stats | undefined {
  return (p) => {
    try {
      return fn(p);
    } catch (e) {
      if (errno(e) === 'ENOENT') return undefined;
      if (errno(e) === 'ENOTDIR') throw fsError('ENOTDIR', `a part of ${p} is not a directory`);
      throw fsError(errno(e), `${p}: ${reason(e)}`);
    }
  };
}

/**
 * mkdir -p, one level at a time. Node's recursive mkdir never ends on /proc and /sys (mkdir
 * there fails with ENOENT, which it takes for a missing parent, forever); this one reports it.
 */
export function makeDirsSync(path: string, mode = DIR_MODE): void {
  for (const dir of missingDirs(path, statOrNot(statSync), statOrNot(lstatSync))) {
    try {
      mkdirSync(dir, { mode });
    } catch (e) {
      if (errno(e) !== 'EEXIST') throw mkdirError(path, dir, e);
    }
  }
}

function mkdirError(path: string, dir: string, e: unknown): Error {
  return fsError(errno(e), dir === resolve(path) ? reason(e) : `cannot make ${dir}: ${reason(e)}`);
}

/** makeDirsSync without blocking on the mkdirs themselves. */
export async function makeDirs(path: string, mode = DIR_MODE): Promise<void> {
  for (const dir of missingDirs(path, statOrNot(statSync), statOrNot(lstatSync))) {
    try {
      await fs.mkdir(dir, { mode });
    } catch (e) {
      if (errno(e) !== 'EEXIST') throw mkdirError(path, dir, e);
    }
  }
}

/**
 * mkdir -p with 0700 on every directory it creates; an existing `path` that is looser is
 * tightened (with a warning). Parents that already existed are left alone.
 */
export async function ensurePrivateDir(path: string, warnings: string[]): Promise<void> {
  await makeDirs(path, DIR_MODE);
  const st = await fs.stat(path);
  if (!st.isDirectory()) throw Object.assign(new Error(`${path} is not a directory`), { code: 'ENOTDIR' });
  const w = await tightenMode(path, DIR_MODE);
  if (w) warnings.push(w);
}

/**
 * As ssh does with a private key: a file or directory that holds secrets and is open to group
 * or others is refused, with the command that fixes it (nothing is loosened or tightened here).
 */
export async function requirePrivate(path: string, mode: number): Promise<void> {
  const st = await fs.stat(path);
  const actual = st.mode & 0o777;
  if ((actual & 0o077) === 0) return;
  throw fsError(
    'EPERM',
    `${path} is mode ${octal(actual)}: it holds the token's secrets and must be private; fix it with: chmod ${octal(mode).slice(1)} ${path}`,
  );
}

/** fsync a directory, so that a rename or link in it is durable. */
export async function fsyncDir(dir: string): Promise<void> {
  let fh: fs.FileHandle | undefined;
  try {
    fh = await fs.open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
    await fh.sync();
  } catch {
    // Some filesystems refuse fsync on a directory; the rename is still atomic there.
  } finally {
    await fh?.close();
  }
}

/**
 * A new temporary file beside `path` holding `data` (fsynced unless `sync` is false); its path.
 * If writing fails, the file is removed and the error thrown.
 */
async function writeTemp(path: string, data: string | Uint8Array, mode: number, sync = true): Promise<string> {
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  const fh = await fs.open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode);
  try {
    await fh.writeFile(data);
    if (sync) await fh.sync();
  } catch (e) {
    await fh.close();
    await fs.rm(tmp, { force: true });
    throw e;
  }
  await fh.close();
  return tmp;
}

/** Write `data` to `path` atomically with mode 0600 (or `mode`). */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode = FILE_MODE): Promise<void> {
  const tmp = await writeTemp(path, data, mode);
  try {
    await fs.rename(tmp, path);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw e;
  }
  await fsyncDir(dirname(path));
}

/**
 * Create `path` with `data` only if it does not exist yet (atomically: the file appears
 * complete or not at all). Returns false when it already existed. `durable: false` skips the
 * fsyncs (a lock file need not survive a crash).
 */
export async function createFileAtomic(
  path: string,
  data: string | Uint8Array,
  mode = FILE_MODE,
  { durable = true }: { durable?: boolean } = {},
): Promise<boolean> {
  const tmp = await writeTemp(path, data, mode, durable);
  try {
    // link() fails with EEXIST instead of replacing, unlike rename().
    await fs.link(tmp, path);
    if (durable) await fsyncDir(dirname(path));
    return true;
  } catch (e) {
    if (errno(e) === 'EEXIST') return false;
    throw e;
  } finally {
    await fs.rm(tmp, { force: true });
  }
}

// Kernel file systems: nothing kmu11 writes can live there (statfs f_type).
const KERNEL_FS: Record<number, string> = { 0x9fa0: '/proc', 0x62656572: '/sys', 0x64626720: 'debugfs', 0x27e0eb: 'cgroup', 0x63677270: 'cgroup2' };

/**
 * Why `home` cannot be kmu11's home, or undefined: it (or its nearest existing parent) is a
 * file, a dangling symbolic link, or on /proc or /sys.
 */
export function homeProblem(home: string): string | undefined {
  let dirs: string[];
  try {
    dirs = missingDirs(home, statOrNot(statSync), statOrNot(lstatSync));
  } catch (e) {
    return (e as Error).message;
  }
  const existing = dirs.length > 0 ? dirname(dirs[0]!) : resolve(home);
  try {
    const kind = KERNEL_FS[statfsSync(existing).type];
    if (kind) return `${resolve(home)} is on ${kind}, a kernel file system; choose a directory on disk`;
  } catch {
    // statfs unsupported: the mkdir and writes that follow report what is wrong
  }
  return undefined;
}
