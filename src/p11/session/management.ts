// Session management: login, logout, PIN initialization, close.
import { CKR } from '../constants.js';
import { Pkcs11Error } from '../error.js';
import type { NativeModule } from '../native.js';

export function login(native: NativeModule, session: number, pin: string, userType: number): Promise<void> {
  return native.C_Login(session, userType, pin);
}

export function logout(native: NativeModule, session: number): Promise<void> {
  return native.C_Logout(session);
}

export function initPin(native: NativeModule, session: number, pin: string): Promise<void> {
  return native.C_InitPIN(session, pin);
}

/** C_CloseSession; a session the module already dropped (module finalized, token gone) counts as closed. */
export async function closeSession(native: NativeModule, session: number): Promise<void> {
  try {
    await native.C_CloseSession(session);
  } catch (e) {
    if (
      e instanceof Pkcs11Error &&
      (e.code === CKR.SESSION_HANDLE_INVALID ||
        e.code === CKR.SESSION_CLOSED ||
        e.code === CKR.CRYPTOKI_NOT_INITIALIZED ||
        e.code === CKR.DEVICE_REMOVED ||
        e.code === CKR.TOKEN_NOT_PRESENT)
    ) {
      return;
    }
    throw e;
  }
}
