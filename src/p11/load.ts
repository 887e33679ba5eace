// Finds and loads the addon: a local compile (build/Release, from `npm rebuild` or a checkout)
// wins, else the prebuild shipped in the package (prebuilds/<platform>-<arch>/, named as
// node-gyp-build reads it, so its install script skips compiling when that one loads).
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { arch, platform } from 'node:process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const FILE = 'kmu11_pkcs11';

/** The addon is missing or cannot be loaded here: one line (starting `kmu11: `) saying what to run. */
export class AddonLoadError extends Error {
  constructor(message: string, opts: { cause?: unknown } = {}) {
    super(message, opts);
    this.name = 'AddonLoadError';
  }
}

function libc(): 'glibc' | 'musl' {
  // As node-gyp-build decides it (cheaply: no process report at start-up).
  return existsSync('/etc/alpine-release') ? 'musl' : 'glibc';
}

/** The package root: the nearest directory up from this file that holds the addon or its sources. */
function packageRoot(url: string): string {
  let dir = dirname(fileURLToPath(url));
  for (let i = 0; i < 4; i++, dir = dirname(dir))
    if (existsSync(join(dir, 'build')) || existsSync(join(dir, 'prebuilds')) || existsSync(join(dir, 'binding.gyp'))) return dir;
  return dirname(dirname(fileURLToPath(url)));
}

export function addonCandidates(url: string): string[] {
  const root = packageRoot(url);
  const dir = join(root, 'prebuilds', `${platform}-${arch}`);
  const tags = platform === 'linux' ? [`.napi.${libc()}`, '.napi'] : ['.napi'];
  return [join(root, 'build', 'Release', `${FILE}.node`), ...tags.map((t) => join(dir, `${FILE}${t}.node`))];
}

export function loadAddon<T>(url: string): { path: string; addon: T } {
  const path = addonCandidates(url).find((p) => existsSync(p));
  const fix = 'run `npm rebuild kmu11` where kmu11 is installed (needs make and a C++ compiler), or `npm run build:addon` in a checkout';
  if (!path) throw new AddonLoadError(`kmu11: the native addon is not built for ${platform}-${arch}: ${fix}`);
  try {
    return { path, addon: createRequire(url)(path) as T };
  } catch (e) {
    const why = (e as Error).message.split('\n')[0];
    throw new AddonLoadError(`kmu11: the native addon ${path} does not load (${why}): ${fix}`, { cause: e });
  }
}
