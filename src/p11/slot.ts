// A slot and its token (rust-cryptoki's slot/token management).
import { CKF } from './constants.js';
import type { MechanismInfo, SlotInfo, TokenInfo } from './info.js';
import type { Module } from './module.js';
import { NATIVE } from './native.js';
import { SESSIONS } from './module.js';
import { Session } from './session/session.js';

export class Slot {
  readonly module: Module;
  readonly id: number;

  constructor(module: Module, id: number) {
    this.module = module;
    this.id = id;
  }

  getInfo(): Promise<SlotInfo> {
    try {
      return this.module[NATIVE].C_GetSlotInfo(this.id);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  getTokenInfo(): Promise<TokenInfo> {
    try {
      return this.module[NATIVE].C_GetTokenInfo(this.id);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  getMechanisms(): Promise<number[]> {
    try {
      return this.module[NATIVE].C_GetMechanismList(this.id);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  getMechanismInfo(mechanism: number): Promise<MechanismInfo> {
    try {
      return this.module[NATIVE].C_GetMechanismInfo(this.id, mechanism);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** C_InitToken: label is padded with blanks to 32 bytes (at most 32 bytes of UTF-8). */
  initToken(soPin: string, label: string): Promise<void> {
    try {
      return this.module[NATIVE].C_InitToken(this.id, soPin, label);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Opens a serial session, read-write unless `rw: false`. */
  async openSession(opts: { rw?: boolean } = {}): Promise<Session> {
    if (typeof opts !== 'object' || opts === null) throw new TypeError('opts must be an object');
    const rw = opts.rw ?? true;
    if (typeof rw !== 'boolean') throw new TypeError('opts.rw must be a boolean');
    const flags = CKF.SERIAL_SESSION | (rw ? CKF.RW_SESSION : 0);
    const handle = await this.module[NATIVE].C_OpenSession(this.id, flags);
    const session = new Session(this, handle);
    this.module[SESSIONS].add(session);
    return session;
  }
}
