// kmu's text output, line for line as the key_mgmt_util reference pages show it, or (profile
// "kmu3", the default) as key_mgmt_util 3.x printed it where scripts parse it.
// Formatters read result objects only; they never reach the token.
import type { CommandResult } from '../commands/index.js';
import type { HelpData } from '../commands/help.js';
import type { GetAttributeData } from '../commands/getAttribute.js';
import type { ListECCCurveIdsData } from '../commands/listECCCurveIds.js';
import { hexCode, RC, returnCodeText } from '../kmu/returnCodes.js';
import { attributeDump } from '../kmu/objAttr.js';
import { USER_FORMATTERS } from './usersText.js';
import { KEY_TRANSFER_FORMATTERS } from './textKeys.js';

export const T = '        ';

/** "kmu3": what key_mgmt_util 3.x printed (scripts in the wild parse it); "pages": the reference pages' older transcripts. */
export type Profile = 'kmu3' | 'pages';

/** A required flag not given: kmu's "Error: <what> (-<flag>) is missing." */
export interface MissingFlag {
  flag: string;
  what: string;
}

export function missingFlagLines(missing: readonly MissingFlag[]): string[] {
  return ['', ...missing.map((m) => `${T}Error: ${m.what} (${m.flag}) is missing.`)];
}

export function returned(op: string, code: number, sep = ' returned:'): string {
  return `${op}${sep} ${hexCode(code)} : ${returnCodeText(code) ?? 'HSM Error: unknown error'}`;
}

/** "Node id 0 and err state 0x000000a8 : HSM Error: …": one line per HSM, highest id first (a token is one). */
export function clusterLines(code: number, indent = T, title = 'Cluster Error Status', nodes = 1): string[] {
  if (code === RC.POLICY_VIOLATION)
    // The page's policy refusal: the cluster reports the server unavailable.
    return [`${indent}${title}`, `${indent}Node id 0 and err state ${hexCode(RC.CLUSTER_UNAVAILABLE)} : ${returnCodeText(RC.CLUSTER_UNAVAILABLE)}`];
  const state = '0x' + code.toString(16).padStart(8, '0');
  const text = returnCodeText(code) ?? 'HSM Error: unknown error';
  const ids = Array.from({ length: Math.max(1, nodes) }, (_, i) => Math.max(1, nodes) - 1 - i);
  return [`${indent}${title}`, ...ids.map((n) => `${indent}Node id ${n} and err state ${state} : ${text}`)];
}

export type Formatter = (r: CommandResult<any>, profile: Profile) => string[];

const genPair =
  (sep: string): Formatter =>
  (r) =>
    r.code !== 0
      ? ['', T + returned(r.op, r.code, sep), '', ...(r.code === RC.ATTESTATION_FAILED ? [`${T}Attestation Check : [FAIL]`, ''] : []), ...clusterLines(r.code, T, 'Cluster Error Status', r.data.nodes)]
      : [
          '',
          T + returned(r.op, 0, sep),
          '',
          `${T}${r.op}:    public key handle: ${r.data.publicKey}    private key handle: ${r.data.privateKey}`,
          '',
          // kmu11's -uri: each key's PKCS#11 URI.
          ...(r.data.showUri ? [`${T}public key URI: ${r.data.publicUri}`, `${T}private key URI: ${r.data.privateUri}`, ''] : []),
          ...(r.data.attestation ? [`${T}Attestation Check : [${r.data.attestation}]`, ''] : []),
          ...clusterLines(0, T, 'Cluster Error Status', r.data.nodes),
        ];

const login: Formatter = (r) => ['', returned(r.op, r.code), '', ...clusterLines(r.code, '', 'Cluster Status')];

const FORMATTERS: Record<string, Formatter> = {
  genECCKeyPair: genPair(' returned:'),
  genRSAKeyPair: genPair(' returned:'),
  ...KEY_TRANSFER_FORMATTERS,
  // The genDSAKeyPair page prints "Cfm3GenerateKeyPair: returned:".
  genDSAKeyPair: genPair(': returned:'),
  loginHSM: login,
  logoutHSM: login,
  findKey(r, profile) {
    if (r.code !== 0) return ['', T + returned(r.op, r.code), '', ...clusterLines(r.code)];
    const handles: number[] = r.data.handles;
    const lines =
      profile === 'pages'
        ? ['', `Total number of keys present ${handles.length}`, '']
        : ['', `Total number of keys present: ${handles.length}`, ''];
    if (handles.length > 0)
      lines.push(
        ...(profile === 'pages'
          ? [` number of keys matched from start index 0::${handles.length - 1}`, handles.join(', ')]
          : [`Handles of matching keys:\t${handles.join(', ')}`]),
        '',
      );
    if (r.data.showUri && handles.length > 0) lines.push(...handles.map((h, i) => `${h} : ${r.data.uris[i]}`), '');
    return [...lines, ...clusterLines(0), '', T + returned(r.op, 0)];
  },
  getAttribute(r) {
    if (r.code !== 0) return ['', T + returned(r.op, r.code)];
    const d = r.data as GetAttributeData;
    const lines: string[] = [];
    if (d.all) lines.push(`got all attributes of size ${d.size} attr cnt ${d.attributes.length}`);
    if (d.file !== undefined) {
      // The two pages word this line differently for one attribute and for all (-a 512).
      lines.push(d.all ? `Attributes dumped into ${d.file}` : `Attributes dumped into ${d.file} file`);
      if (!d.all) return lines;
    } else {
      lines.push(...attributeDump(d.attributes, d.all).replace(/\n$/, '').split('\n'));
    }
    return [...lines, '', T + returned(r.op, 0)];
  },
  getKeyInfo(r) {
    if (r.code !== 0) return ['', T + returned(r.op, r.code), '', ...clusterLines(r.code)];
    const { owner, shared, mValue } = r.data as { owner: number; shared: number[]; mValue: number };
    const lines = ['', T + returned(r.op, 0), '', `${T}Owned by user ${owner}`];
    if (shared.length > 0) lines.push('', `${T}also, shared to following ${shared.length} user(s):`, '', ...shared.map((u) => `${T}         ${u}`));
    if (mValue > 0) lines.push(`${T} ${mValue} Users need to approve to use/manage this key`);
    return lines;
  },
  deleteKey(r) {
    // The page: an unknown handle fails in the lookup, reported as Cfm3FindKey.
    const op = r.code === RC.INVALID_HANDLE ? 'Cfm3FindKey' : r.op;
    return ['', T + returned(op, r.code), '', ...clusterLines(r.code)];
  },
  setAttribute(r) {
    return ['', T + returned(r.op, r.code), '', ...clusterLines(r.code)];
  },
  exportPubKey(r) {
    if (r.code !== 0) return ['', returned(r.op, r.code)];
    return ['', `PEM formatted public key is written to ${r.data.file}`, '', returned(r.op, 0)];
  },
  Error2String(r) {
    const { code, text } = r.data as { code: number; text: string | null };
    return ['', `${T}Error Code ${code.toString(16)} maps to ${text ?? 'an unknown error code'}`];
  },
  listAttributes(r) {
    const attrs = r.data.attributes as Array<{ name: string; id: number }>;
    return [
      '',
      'Following are the possible attribute values for getAttributes:',
      '',
      ...attrs.map((a) => `      ${a.name.padEnd(32)}= ${a.id}`),
    ];
  },
  listECCCurveIds(r) {
    if (r.code !== 0) return ['', T + returned('Cfm3GenerateKeyPair', r.code)];
    const d = r.data as ListECCCurveIdsData;
    if (d.supported.length === 0) return ['', `${T}This token supports no ECC curve`];
    return ['', `${T}Supported ECC Curve Ids on this token:`, '', ...d.supported.map((c) => `${T}${String(c.id).padStart(2)} : ${c.nid}`)];
  },
  help(r) {
    const d = r.data as HelpData;
    const lines = ['', 'Help Commands Available:', '', 'Syntax: <command> -h', '', '', '   Command               Description', '   =======               ===========', ''];
    for (const s of d.sections) {
      if (s.title) lines.push('', `${T}${s.title}`);
      for (const c of s.commands) lines.push(`   ${c.name.padEnd(23)}${c.description}`);
    }
    return lines;
  },
  exit: () => [],
  ...USER_FORMATTERS,
};

/** kmu's lines for a result, without a trailing newline. */
export function formatText(result: CommandResult<any>, profile: Profile = 'kmu3'): string {
  const f = FORMATTERS[result.command];
  const lines = f ? f(result, profile) : ['', T + returned(result.op, result.code)];
  return lines.join('\n');
}

export function formatSyntax(syntax: string): string {
  return `\n${syntax}\n`;
}
