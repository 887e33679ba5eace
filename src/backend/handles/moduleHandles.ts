// Modules whose object handles already last (CloudHSM): the kmu handle is the object handle.
import { CKA, CKK, CKO, CKR, type Session } from '../../p11/index.js';
import { publicValueOf } from './fingerprint.js';
import type { CreatedObject, HandleStore, KeyMeta } from './store.js';
import { invalidHandle } from './store.js';

export interface ModuleHandleStoreOptions {
  /** Owner / shared users / m_value of a key kmu11 did not make in this process (default: owner 0). */
  meta?: (handle: number) => Promise<KeyMeta | undefined>;
}

/**
 * Handles are the module's own object handles. Metadata given to register() is kept for this
 * process only (CloudHSM keeps owner and sharing itself; `opts.meta` can read them).
 * replace() cannot keep a number the module assigned: the old handle names the copy for the
 * rest of this process, and list() shows the copy under the old handle; other processes see
 * the copy's own handle.
 */
export class ModuleHandleStore implements HandleStore {
  private readonly metas = new Map<number, KeyMeta>();
  private readonly aliases = new Map<number, number>(); // old handle -> new object
  private readonly aliasOf = new Map<number, number>(); // new object -> old handle
  private readonly removed = new Set<number>();

  constructor(
    private readonly session: Session,
    private readonly opts: ModuleHandleStoreOptions = {},
  ) {}

  async register(created: CreatedObject[]): Promise<number[]> {
    for (const c of created) {
      this.metas.set(c.object, { owner: c.meta.owner, shared: [...c.meta.shared], mValue: c.meta.mValue });
      this.removed.delete(c.object);
    }
    return created.map((c) => c.object);
  }

  async resolve(handle: number): Promise<number> {
    if (!Number.isSafeInteger(handle) || handle <= 0) throw invalidHandle(handle, 'unknown');
    if (this.removed.has(handle)) throw invalidHandle(handle, 'deleted');
    const obj = this.aliases.get(handle) ?? handle;
    try {
      const [r] = await this.session.getAttributes(obj, [CKA.CLASS]);
      if (!r || !('value' in r)) throw invalidHandle(handle, 'unknown');
    } catch (e) {
      const code = (e as { code?: unknown }).code;
      const ckr = (e as { ckr?: unknown }).ckr;
      if (code === CKR.OBJECT_HANDLE_INVALID || ckr === 'CKR_OBJECT_HANDLE_INVALID') throw invalidHandle(handle, 'unknown');
      throw e;
    }
    return obj;
  }

  async list(objects: number[]): Promise<number[]> {
    return objects.map((o) => this.aliasOf.get(o) ?? o);
  }

  async meta(handle: number): Promise<KeyMeta> {
    if (this.removed.has(handle)) throw invalidHandle(handle, 'deleted');
    const obj = this.aliases.get(handle) ?? handle;
    const m = this.metas.get(obj) ?? (await this.opts.meta?.(obj)) ?? { owner: 0, shared: [], mValue: 0 };
    return { owner: m.owner, shared: [...m.shared], mValue: m.mValue };
  }

  /** Nothing is recorded: a private key's CKA_PUBLIC_KEY_INFO, when the module keeps it. */
  async publicValue(handle: number): Promise<Buffer | undefined> {
    const obj = await this.resolve(handle);
    const read = await this.session.getAttributes(obj, [CKA.CLASS, CKA.KEY_TYPE, CKA.PUBLIC_KEY_INFO]).catch(() => []);
    const [cls, kt, spki] = read;
    const value = (r: typeof cls) => (r && 'value' in r ? r.value : undefined);
    const der = value(spki);
    if (value(cls) !== CKO.PRIVATE_KEY || !Buffer.isBuffer(der) || der.length === 0) return undefined;
    const pub = publicValueOf(der, value(kt) === CKK.DSA);
    return pub ? Buffer.from(pub, 'hex') : undefined;
  }

  /** For this process only, like register(): CloudHSM keeps sharing itself. */
  async setMeta(handle: number, meta: KeyMeta): Promise<void> {
    if (this.removed.has(handle)) throw invalidHandle(handle, 'deleted');
    this.metas.set(this.aliases.get(handle) ?? handle, { owner: meta.owner, shared: [...meta.shared], mValue: meta.mValue });
  }

  async replace(handle: number, newObject: number): Promise<void> {
    const old = this.aliases.get(handle) ?? handle;
    const m = this.metas.get(old);
    if (m) this.metas.set(newObject, m);
    if (newObject !== handle) {
      this.aliases.set(handle, newObject);
      this.aliasOf.set(newObject, handle);
    }
  }

  async remove(handle: number): Promise<void> {
    const obj = this.aliases.get(handle) ?? handle;
    this.metas.delete(obj);
    this.aliasOf.delete(obj);
    this.aliases.delete(handle);
    this.removed.add(handle);
  }

  async updated(): Promise<void> {}

  /** CloudHSM keeps no journal here: a generation killed part way is not recovered (see README). */
  async intend(): Promise<void> {}

  async recover(): Promise<void> {}

  async settle(_delivered: boolean): Promise<void> {}

  takeWarnings(): string[] {
    return [];
  }

  async close(): Promise<void> {}
}
