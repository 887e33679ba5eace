// The baseline for kmu11's one-shot run: the least a Node script does to make one token EC key
// pair with pkcs11js (load, C_Initialize, find the token, open a session, C_Login,
// C_GenerateKeyPair P-256 on the token, C_Finalize). The user PIN comes in KMU11_BENCH_PIN.
const pkcs11js = require('pkcs11js');
const [modulePath, label] = process.argv.slice(2);
const p = new pkcs11js.PKCS11();
p.load(modulePath);
p.C_Initialize();
try {
  const slot = p.C_GetSlotList(true).find((s) => p.C_GetTokenInfo(s).label.trim() === label);
  const s = p.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
  p.C_Login(s, pkcs11js.CKU_USER, process.env.KMU11_BENCH_PIN);
  const common = [
    { type: pkcs11js.CKA_TOKEN, value: true },
    { type: pkcs11js.CKA_LABEL, value: 'oneshot' },
  ];
  p.C_GenerateKeyPair(
    s,
    { mechanism: pkcs11js.CKM_EC_KEY_PAIR_GEN },
    [...common, { type: pkcs11js.CKA_EC_PARAMS, value: Buffer.from('06082a8648ce3d030107', 'hex') }, { type: pkcs11js.CKA_VERIFY, value: true }],
    [...common, { type: pkcs11js.CKA_SIGN, value: true }, { type: pkcs11js.CKA_SENSITIVE, value: true }, { type: pkcs11js.CKA_PRIVATE, value: true }],
  );
  p.C_Logout(s);
  p.C_CloseSession(s);
} finally {
  p.C_Finalize();
}
