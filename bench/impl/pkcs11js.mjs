// Baseline: pkcs11js 2.x. Key generation is async on the libuv pool;
// C_DestroyObject has no async form, so it runs on the event loop.
import pkcs11js from 'pkcs11js';
import {
  CKR_USER_ALREADY_LOGGED_IN, CKU_USER, mechanism, privateTemplate, publicTemplate,
} from '../template.mjs';

export async function open({ module, label, pin, sessions: count }) {
  const p11 = new pkcs11js.PKCS11();
  p11.load(module);
  // Never the zeroed default: SoftHSM would run without locks (pkcs11-notes.md).
  p11.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
  const slot = p11
    .C_GetSlotList(true)
    .find((s) => p11.C_GetTokenInfo(s).label.trim() === label);
  if (!slot) throw new Error(`pkcs11js: no token labelled ${label}`);
  const flags = pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION;
  const sessions = Array.from({ length: count }, () => p11.C_OpenSession(slot, flags));
  try {
    p11.C_Login(sessions[0], CKU_USER, pin);
  } catch (e) {
    if (e.code !== CKR_USER_ALREADY_LOGGED_IN) throw e;
  }
  return {
    async pair(i) {
      const s = sessions[i];
      const { publicKey, privateKey } = await p11.C_GenerateKeyPairAsync(
        s, mechanism, publicTemplate, privateTemplate,
      );
      p11.C_DestroyObject(s, publicKey);
      p11.C_DestroyObject(s, privateKey);
    },
    async close() {
      for (const s of sessions) p11.C_CloseSession(s);
      p11.C_Finalize();
      p11.close();
    },
  };
}
