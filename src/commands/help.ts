import { ok, type OfflineCommand } from './types.js';
import { COMMANDS } from './index.js';

/** The help page's sections, in its order; kmu11 lists only the commands it has. */
const SECTIONS: ReadonlyArray<readonly [string | null, readonly string[]]> = [
  [null, ['exit', 'help']],
  ['Configuration and Admin Commands', ['getHSMInfo', 'getPartitionInfo', 'listUsers', 'loginStatus', 'loginHSM', 'logoutHSM']],
  ['M of N commands', ['getToken', 'delToken', 'approveToken', 'listTokens']],
  ['Key Generation Commands', []],
  ['Asymmetric Keys:', ['genRSAKeyPair', 'genDSAKeyPair', 'genECCKeyPair']],
  ['Symmetric Keys:', ['genPBEKey', 'genSymKey']],
  ['Key Import/Export Commands', ['createPublicKey', 'importPubKey', 'exportPubKey', 'importPrivateKey', 'exportPrivateKey', 'imSymKey', 'exSymKey', 'wrapKey', 'unWrapKey']],
  ['Key Management Commands', ['deleteKey', 'setAttribute', 'getKeyInfo', 'findKey', 'findSingleKey', 'getAttribute']],
  ['Certificate Setup Commands', ['getCert']],
  ['Key Transfer Commands', ['insertMaskedObject', 'extractMaskedObject']],
  ['Management Crypto Commands', ['sign', 'verify', 'aesWrapUnwrap']],
  ['Helper Commands', ['Error2String', 'getCaviumPrivKey', 'IsValidKeyHandlefile', 'listAttributes', 'listECCCurveIds']],
];

export interface HelpData {
  sections: Array<{ title: string | null; commands: Array<{ name: string; description: string }> }>;
}

export const help: OfflineCommand<Record<string, never>, HelpData> = {
  name: 'help',
  description: 'Displays this information',
  op: 'help',
  offline: true,
  syntax: 'help',
  flags: [],
  async run() {
    const byName = new Map(COMMANDS.map((c) => [c.name, c]));
    const sections: HelpData['sections'] = [];
    for (const [title, names] of SECTIONS) {
      const commands = names.flatMap((n) => {
        const c = byName.get(n);
        return c ? [{ name: c.name, description: c.description }] : [];
      });
      // Keep headings that introduce subsections ("Key Generation Commands").
      if (commands.length > 0 || (names.length === 0 && title)) sections.push({ title, commands });
    }
    return ok(help, { sections });
  },
};
