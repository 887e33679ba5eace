// Mechanisms: a CKM number and its parameter, passed through untouched.
// `parameter` is a CK_ULONG (number) or the parameter structure's bytes as the
// module expects them (Buffer), e.g. a vendor structure.
export interface Mechanism {
  mechanism: number;
  parameter?: Buffer | number;
}
