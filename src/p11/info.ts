// What C_GetInfo, C_GetSlotInfo, C_GetTokenInfo and C_GetMechanismInfo return, as the addon
// gives them to Module and Slot. Text fields come without their blank padding (the addon
// strips it).

export interface Version {
  major: number;
  minor: number;
}

export interface ModuleInfo {
  cryptokiVersion: Version;
  manufacturerID: string;
  flags: number;
  libraryDescription: string;
  libraryVersion: Version;
}

export interface SlotInfo {
  slotDescription: string;
  manufacturerID: string;
  flags: number;
  hardwareVersion: Version;
  firmwareVersion: Version;
}

/** Counters the token does not report are -1. */
export interface TokenInfo {
  label: string;
  manufacturerID: string;
  model: string;
  serialNumber: string;
  flags: number;
  maxSessionCount: number;
  sessionCount: number;
  maxRwSessionCount: number;
  rwSessionCount: number;
  maxPinLen: number;
  minPinLen: number;
  totalPublicMemory: number;
  freePublicMemory: number;
  totalPrivateMemory: number;
  freePrivateMemory: number;
  hardwareVersion: Version;
  firmwareVersion: Version;
  utcTime: string;
}

export interface MechanismInfo {
  minKeySize: number;
  maxKeySize: number;
  flags: number;
}
