// kmu's text for the key-transfer and symmetric-key commands, line for line as their
// reference pages show it (kept apart from text.ts, which holds the founding commands').
import type { CommandResult } from '../commands/index.js';
import { T, clusterLines, returned, type Formatter } from './text.js';

/** A failure: the operation's returned line, and the cluster status where the page shows one. */
const failed = (r: CommandResult<any>, cluster = true): string[] =>
  ['', T + returned(r.op, r.code), ...(cluster ? ['', ...clusterLines(r.code)] : [])];

/** Hex bytes eight to a line, as aesWrapUnwrap's "result data:". */
function hexLines(data: Buffer): string[] {
  const out: string[] = [];
  for (let i = 0; i < data.length; i += 8)
    out.push([...data.subarray(i, i + 8)].map((b) => b.toString(16).toUpperCase().padStart(2, '0')).join(' '));
  return out;
}

export const KEY_TRANSFER_FORMATTERS: Record<string, Formatter> = {
  genSymKey(r) {
    if (r.code !== 0) return failed(r);
    return ['', T + returned(r.op, 0), '', `${T}Symmetric Key Created.  Key Handle: ${r.data.handle}`, '', ...clusterLines(0)];
  },
  wrapKey(r) {
    if (r.code !== 0) return failed(r, false);
    // The page's line has no closing quote after the file name.
    return ['', `${T}Key Wrapped.`, '', `${T}Wrapped Key written to file "${r.data.file} length ${r.data.length}`, '', T + returned(r.op, 0)];
  },
  unWrapKey(r) {
    if (r.code !== 0) return failed(r);
    if (r.data.noheader)
      return [
        '',
        T + returned('Cfm3CreateUnwrapTemplate2', 0),
        T + returned('Cfm2UnWrapWithTemplate3', 0),
        '',
        `${T}Key Unwrapped. Key Handle: ${r.data.handle}`,
        '',
        ...clusterLines(0),
      ];
    return ['', T + returned(r.op, 0), '', `${T}Key Unwrapped.  Key Handle: ${r.data.handle}`, '', ...clusterLines(0)];
  },
  exSymKey(r) {
    if (r.code !== 0) return failed(r, false);
    // The page: two blank lines after the host unwrap, one when -wk unwrapped outside.
    const lines = ['', T + returned('Cfm3WrapKey', 0), ''];
    if (!r.data.externalKey) lines.push(T + returned('Cfm3UnWrapHostKey', 0), '', '');
    return [...lines, `Wrapped Symmetric Key written to file "${r.data.file}"`];
  },
  imSymKey(r) {
    if (r.code !== 0) return failed(r);
    return [
      '',
      T + returned('Cfm3WrapHostKey', 0),
      '',
      T + returned('Cfm3CreateUnwrapTemplate', 0),
      '',
      T + returned('Cfm3UnWrapKey', 0),
      '',
      `${T}Symmetric Key Unwrapped.  Key Handle: ${r.data.handle}`,
      '',
      ...clusterLines(0),
    ];
  },
  importPubKey(r) {
    if (r.code !== 0) return failed(r);
    return ['', returned(r.op, 0), '', `Public Key Handle: ${r.data.handle}`, '', ...clusterLines(0)];
  },
  exportPrivateKey(r) {
    if (r.code !== 0) return failed(r, false);
    const lines = ['', returned('Cfm3WrapKey', 0), ''];
    if (!r.data.externalKey) lines.push(T + returned('Cfm3UnWrapHostKey', 0), '');
    return [...lines, `PEM formatted private key is written to ${r.data.file}`];
  },
  importPrivateKey(r) {
    if (r.code !== 0) return failed(r);
    return [
      '',
      `BER encoded key length is ${r.data.berLength}`,
      '',
      returned('Cfm3WrapHostKey', 0),
      '',
      returned('Cfm3CreateUnwrapTemplate', 0),
      '',
      returned('Cfm3UnWrapKey', 0),
      '',
      `Private Key Unwrapped.  Key Handle: ${r.data.handle}`,
      '',
      ...clusterLines(0, ''),
    ];
  },
  aesWrapUnwrap(r) {
    if (r.code !== 0) return failed(r, false);
    const lines = [''];
    if (r.data.defaultIv) lines.push(`${T}Warning: IV (-i) is missing.`, `${T}         0xA6A6A6A6A6A6A6A6 is considered as default IV`);
    return [...lines, 'result data:', ...hexLines(Buffer.from(r.data.result as string, 'hex')), '', `result written to file ${r.data.file}`, '', T + returned(r.op, 0)];
  },
  findSingleKey(r) {
    return ['', returned(r.op, r.code), '', ...clusterLines(r.code)];
  },
  getCert(r) {
    // The page: "Cfm3GetCert() returned 0 :HSM Return: SUCCESS".
    return ['', `${r.op}() returned ${r.code.toString(16)} :${returned('', r.code).replace(/^ returned: 0x[0-9a-f]+ : /, '')}`];
  },
  IsValidKeyHandlefile(r) {
    if (r.code !== 0) return failed(r, false);
    return ['', r.data.fake ? `Input file has invalid key handle: ${r.data.handle}` : 'Input key file has real private key'];
  },
  getCaviumPrivKey(r) {
    if (r.code !== 0) return failed(r, false);
    return ['', `Private Key Handle is written to ${r.data.file} in fake PEM format`, '', T + returned(r.op, 0)];
  },
  extractMaskedObject(r) {
    if (r.code !== 0) return failed(r, false);
    return ['', `Object was masked and written to file "${r.data.file}"`, '', T + returned(r.op, 0)];
  },
  insertMaskedObject(r) {
    if (r.code !== 0) return failed(r);
    return ['', returned(r.op, 0), `${T}New Key Handle: ${r.data.handle}`, '', ...clusterLines(0)];
  },
  genPBEKey: (r) => failed(r),
};
