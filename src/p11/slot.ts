// A slot and its token (rust-cryptoki's slot/token management).
import { CKF_SESSION } from './constants.js';
import type { MechanismInfo, SlotInfo, TokenInfo } from './info.js';
import type { Module } from './module.js';
import { asPromise, NATIVE } from './native.js';
import { OBJECT_LOCK, SESSIONS } from './module.js';
import { Session } from './session/session.js';

export class Slot {
  readonly module: Module;
  readonly id: number;

  constructor(module: Module, id: number) {
    this.module = module;
    this.id = id;
  }

  getInfo(): Promise<SlotInfo> {
    return asPromise(() => this.module[NATIVE].C_GetSlotInfo(this.id));
  }

  getTokenInfo(): Promise<TokenInfo> {
    // Reads the token's own file (flags): a read under the library's ObjectLock.
    return asPromise(() => this.module[OBJECT_LOCK].run(false, () => this.module[NATIVE].C_GetTokenInfo(this.id)));
  }

  getMechanisms(): Promise<number[]> {
    return asPromise(() => this.module[NATIVE].C_GetMechanismList(this.id));
  }

  getMechanismInfo(mechanism: number): Promise<MechanismInfo> {
    return asPromise(() => this.module[NATIVE].C_GetMechanismInfo(this.id, mechanism));
  }

  /** C_InitToken: label is padded with blanks to 32 bytes (at most 32 bytes of UTF-8). */
  initToken(soPin: string, label: string): Promise<void> {
    return asPromise(() => this.module[OBJECT_LOCK].run(true, () => this.module[NATIVE].C_InitToken(this.id, soPin, label)));
  }

  /** Opens a serial session, read-write unless `rw: false`. */
  async openSession(opts: { rw?: boolean } = {}): Promise<Session> {
    if (typeof opts !== 'object' || opts === null) throw new TypeError('opts must be an object');
    const rw = opts.rw ?? true;
    if (typeof rw !== 'boolean') throw new TypeError('opts.rw must be a boolean');
    const flags = CKF_SESSION.SERIAL_SESSION | (rw ? CKF_SESSION.RW_SESSION : 0);
    const handle = await this.module[NATIVE].C_OpenSession(this.id, flags);
    const session = new Session(this, handle);
    this.module[SESSIONS].add(session);
    return session;
  }
}
