// N sessions on one slot for parallel work (PKCS#11 allows one operation at a
// time per session). Sessions open lazily up to `size`; callers beyond that
// wait for a release, first come first served.
import type { Session } from './session/session.js';
import type { Slot } from './slot.js';

interface Waiter {
  resolve(session: Session): void;
  reject(error: Error): void;
}

export class SessionPool {
  readonly slot: Slot;
  readonly size: number;
  readonly #idle: Session[] = [];
  readonly #all = new Set<Session>();
  readonly #waiters: Waiter[] = [];
  #opening = 0;
  #closed = false;

  constructor(slot: Slot, size: number) {
    if (!Number.isSafeInteger(size) || size < 1) throw new TypeError('size must be a positive integer');
    this.slot = slot;
    this.size = size;
  }

  acquire(): Promise<Session> {
    if (this.#closed) return Promise.reject(new Error('SessionPool is closed'));
    const idle = this.#idle.pop();
    if (idle) return Promise.resolve(idle);
    if (this.#all.size + this.#opening < this.size) return this.#open();
    return new Promise<Session>((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  release(session: Session): void {
    if (!this.#all.has(session)) throw new Error('session does not belong to this pool');
    if (this.#closed) {
      this.#all.delete(session);
      void session.close().catch(() => undefined);
      return;
    }
    const waiter = this.#waiters.shift();
    if (waiter) waiter.resolve(session);
    else this.#idle.push(session);
  }

  async run<T>(fn: (session: Session) => Promise<T>): Promise<T> {
    const session = await this.acquire();
    try {
      return await fn(session);
    } finally {
      this.release(session);
    }
  }

  /** Closes idle sessions now and busy ones as they are released; pending acquires reject. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const waiter of this.#waiters.splice(0)) waiter.reject(new Error('SessionPool is closed'));
    const idle = this.#idle.splice(0);
    for (const s of idle) this.#all.delete(s);
    await Promise.all(idle.map((s) => s.close()));
  }

  async #open(): Promise<Session> {
    this.#opening++;
    let session: Session;
    try {
      session = await this.slot.openSession({ rw: true });
    } finally {
      this.#opening--;
    }
    if (this.#closed) {
      await session.close();
      throw new Error('SessionPool is closed');
    }
    this.#all.add(session);
    return session;
  }
}
