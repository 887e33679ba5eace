// One loaded library's calls, in this process, ordered around the calls that write token
// objects — for modules that cannot run them beside anything else. SoftHSM 2.6 (every release
// to date; fixed on its develop branch, SoftHSMv2 issue 573 / PR 576) rewrites an object's file
// in place, and a thread refreshing objects meanwhile (C_FindObjectsInit, C_GetAttributeValue,
// any call naming an object) reads it empty or half written: that object is then invalid for
// the rest of the process, so the writer's C_GenerateKeyPair fails with CKR_GENERAL_ERROR
// (CKR_TEMPLATE_INCONSISTENT when the half it read lacked CKA_CLASS). Its file locks are
// fcntl locks, which do not exclude threads of one process. Off unless the caller turns it on
// (Module.serializeObjectWrites): a library without the bug keeps its calls fully parallel.
//
// A readers-writer lock: writes alone, everything else together; first come first served, so a
// write waits only for what came before it and blocks only what comes after.
export class ObjectLock {
  enabled = false;
  #readers = 0;
  #writing = false;
  readonly #queue: Array<{ write: boolean; go(): void }> = [];

  /** Runs `call` (one PKCS#11 call) under the lock: alone when `write`, else beside other reads. */
  run<T>(write: boolean, call: () => Promise<T>): Promise<T> {
    if (!this.enabled) return call();
    if (this.#queue.length === 0 && this.#free(write)) {
      this.#take(write);
      return this.#hold(write, call);
    }
    return new Promise<void>((go) => this.#queue.push({ write, go })).then(() => this.#hold(write, call));
  }

  #free(write: boolean): boolean {
    return !this.#writing && (!write || this.#readers === 0);
  }

  #take(write: boolean): void {
    if (write) this.#writing = true;
    else this.#readers++;
  }

  #hold<T>(write: boolean, call: () => Promise<T>): Promise<T> {
    let p: Promise<T>;
    try {
      p = call();
    } catch (e) {
      this.#release(write);
      return Promise.reject(e);
    }
    return p.then(
      (v) => {
        this.#release(write);
        return v;
      },
      (e: unknown) => {
        this.#release(write);
        throw e;
      },
    );
  }

  #release(write: boolean): void {
    if (write) this.#writing = false;
    else this.#readers--;
    // Hand the lock on before anyone new can take it: waiters are granted here, in order.
    while (this.#queue.length > 0 && this.#free(this.#queue[0]!.write)) {
      const next = this.#queue.shift()!;
      this.#take(next.write);
      next.go();
    }
  }
}

const locks = new Map<string, ObjectLock>();

/** The lock of the library at `realPath`: one for every Module that loaded it. */
export function objectLockFor(realPath: string): ObjectLock {
  let lock = locks.get(realPath);
  if (!lock) locks.set(realPath, (lock = new ObjectLock()));
  return lock;
}

/** Whether a template (as encoded for the addon) makes a token object: CKA_TOKEN (1) true. */
export function makesTokenObject(...templates: ReadonlyArray<{ type: number; value: Buffer }>[]): boolean {
  return templates.some((t) => t.some((a) => a.type === 1 && a.value.length > 0 && a.value[0] !== 0));
}
