// Private files for kmu11's home: directories 0700, files 0600, every write atomic
// (temp file, fsync, rename, fsync of the directory) so a crash leaves the old file or the
// new one, never half of either.
import { randomBytes } from 'node:crypto';
import { constants, promises as fs } from 'node:fs';
import { dirname, join, basename } from 'node:path';

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
export async function tightenMode(path: string, mode: number): Promise<string | undefined> {
  const st = await fs.stat(path);
  const actual = st.mode & 0o777;
  if ((actual & 0o077) === 0) return undefined;
  await fs.chmod(path, mode);
  return `Warning: ${path} was mode ${octal(actual)}; tightened to ${octal(mode)}`;
}

function octal(mode: number): string {
  return '0' + mode.toString(8).padStart(3, '0');
}

/**
 * mkdir -p with 0700 on every directory it creates; an existing `path` that is looser is
 * tightened (with a warning). Parents that already existed are left alone.
 */
export async function ensurePrivateDir(path: string, warnings: string[]): Promise<void> {
  await fs.mkdir(path, { recursive: true, mode: DIR_MODE });
  const st = await fs.stat(path);
  if (!st.isDirectory()) throw Object.assign(new Error(`${path} is not a directory`), { code: 'ENOTDIR' });
  const w = await tightenMode(path, DIR_MODE);
  if (w) warnings.push(w);
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
