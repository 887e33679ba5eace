// kmu's numeric user ids for CloudHSM usernames. SDK 5 names users only by name (`user list`
// has no id), while kmu scripts say `-u 4,6` and getKeyInfo prints "Owned by user 3".
//
// The rule (durable): an id given in the config file ("users": {"alice": 3}) always wins;
// every other username gets, the first time kmu11 sees it (in `user list` order, or at login),
// the next id after the highest one in use, starting at 1. Assignments are written to
// <home>/cloudhsm-users/<cluster>.json before they are used and never change or get reused,
// even when the user is deleted. Usernames are case-insensitive in CloudHSM: kept lowercase.
// Copy that file (or list the users in the config) to give other machines the same ids.
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { KmuError, SetupError } from '../kmu/errors.js';
import { RC } from '../kmu/returnCodes.js';
import { ensurePrivateDir, writeFileAtomic } from './fsutil.js';
import { withLock } from './lock.js';

export class CloudHsmUserMap {
  private ids = new Map<string, number>();
  private loaded = false;

  constructor(
    private readonly path: string | undefined,
    private readonly fixed: Record<string, number> = {},
  ) {}

  static inHome(home: string | undefined, cluster: string, fixed?: Record<string, number>): CloudHsmUserMap {
    const tag = cluster.replace(/[^A-Za-z0-9_.-]/g, '_') || 'default';
    return new CloudHsmUserMap(home ? join(home, 'cloudhsm-users', `${tag}.json`) : undefined, fixed);
  }

  private async read(): Promise<Map<string, number>> {
    const m = new Map<string, number>();
    if (this.path) {
      try {
        const data = JSON.parse(await fs.readFile(this.path, 'utf8')) as Record<string, number>;
        for (const [k, v] of Object.entries(data)) if (Number.isInteger(v) && v > 0) m.set(k, v);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new SetupError(`cannot read ${this.path}: ${(e as Error).message}`);
      }
    }
    for (const [k, v] of Object.entries(this.fixed)) m.set(k.toLowerCase(), v);
    return m;
  }

  /** Ids for `names`, assigning (durably) the ones not seen before. */
  async assign(names: string[]): Promise<number[]> {
    const lower = names.map((n) => n.toLowerCase());
    const known = this.loaded ? this.ids : await this.read();
    if (lower.every((n) => known.has(n))) {
      this.ids = known;
      this.loaded = true;
      return lower.map((n) => known.get(n)!);
    }
    const update = async () => {
      const m = await this.read();
      let next = Math.max(0, ...m.values()) + 1;
      for (const n of lower) if (!m.has(n)) m.set(n, next++);
      if (this.path) {
        const own = Object.fromEntries([...m].filter(([k]) => !(k in this.fixed)));
        await writeFileAtomic(this.path, JSON.stringify(own, null, 2) + '\n');
      }
      this.ids = m;
      this.loaded = true;
      return lower.map((n) => m.get(n)!);
    };
    if (!this.path) return update();
    const dir = join(this.path, '..');
    await ensurePrivateDir(join(dir, '..'), []);
    await ensurePrivateDir(dir, []);
    return withLock(`${this.path}.lock`, update);
  }

  /** The username of a kmu user id; KmuError when kmu11 has never seen that id. */
  async nameOf(id: number): Promise<string> {
    if (!this.loaded) {
      this.ids = await this.read();
      this.loaded = true;
    }
    for (const [n, i] of this.ids) if (i === id) return n;
    throw new KmuError(RC.INVALID_INPUT, { detail: `user id ${id} is not a CloudHSM user kmu11 knows; listUsers shows the ids` });
  }
}
