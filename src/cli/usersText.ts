// kmu's text for the user-model commands: listUsers, sign and verify as their pages print them;
// shareKey, getToken and approveToken in the same style; and `kmu11 users list`'s table.
import type { UserListEntry } from '../backend/index.js';
import type { CommandResult } from '../commands/index.js';
import type { ApproveTokenData } from '../commands/approveToken.js';
import type { GetTokenData } from '../commands/getToken.js';
import { RC } from '../kmu/returnCodes.js';
import { clusterLines, returned } from './text.js';

const T = '        ';
type Formatter = (r: CommandResult<any>) => string[];

/** A cell and at least one blank after it, padded to `width`. */
const cell = (s: string, width: number) => (s.length < width ? s.padEnd(width) : s + ' ');
const yes = (b: boolean) => (b ? 'YES' : 'NO');

/** The listUsers page's table: its column positions, one row per user. */
function userTable(users: UserListEntry[]): string[] {
  return [
    `${T}Index       User ID     User Type       User Name           MofnPubKey    LoginFailureCnt         2FA`,
    ...users.map(
      (u, i) =>
        T +
        cell(String(i + 1), 9) +
        String(u.id).padStart(9) +
        '      ' +
        cell(u.type, 16) +
        cell(u.name, 26) +
        cell(yes(u.mofnPubKey), 17) +
        cell(String(u.loginFailureCnt), 16) +
        yes(u.twoFA),
    ),
  ];
}

/** cloudhsm_mgmt_util's listUsers table (its page's columns), for the one embedded "server". */
export function formatCmuUsers(users: UserListEntry[]): string {
  return [
    'Users on server 0(embedded):',
    `Number of users found:${users.length}`,
    '',
    '    User Id             User Type       User Name            MofnPubKey    LoginFailureCnt         2FA',
    ...users.map(
      (u) =>
        String(u.id).padStart(10) +
        ' '.repeat(14) +
        cell(u.type, 16) +
        cell(u.name, 26) +
        yes(u.mofnPubKey).padStart(3) +
        String(u.loginFailureCnt).padStart(16) +
        yes(u.twoFA).padStart(17),
    ),
  ].join('\n');
}

export const USER_FORMATTERS: Record<string, Formatter> = {
  listUsers(r) {
    if (r.code !== 0) return ['', T + returned(r.op, r.code)];
    const users = r.data.users as UserListEntry[];
    return ['', `${T}Number Of Users found ${users.length}`, '', ...userTable(users), '', T + returned(r.op, 0)];
  },
  sign(r) {
    if (r.code !== 0) return ['', returned(r.op, r.code), '', ...clusterLines(r.code, '')];
    return ['', returned(r.op, 0), '', `signature is written to file ${r.data.file}`, '', ...clusterLines(0, '')];
  },
  verify(r) {
    // The page's refusal of a signature that does not match: the code alone, the CSP text below.
    if (r.code === RC.BAD_PKCS_DATA) return [`${r.op} returned: 0x1b`, '', 'CSP Error: ERR_BAD_PKCS_DATA'];
    if (r.code !== 0) return ['', returned(r.op, r.code)];
    return ['', 'Signature verification successful', '', returned(r.op, 0)];
  },
  shareKey(r) {
    return ['', T + returned(r.op, r.code), '', ...clusterLines(r.code)];
  },
  getToken(r) {
    if (r.code !== 0) return ['', T + returned(r.op, r.code)];
    const d = r.data as GetTokenData;
    return [
      '',
      T + returned(r.op, 0),
      '',
      `${T}Quorum token ${d.id} (${d.operation} key ${d.handle}) written to ${d.file}`,
      `${T}${d.approvalsNeeded} approvals needed; expires ${d.expires}`,
    ];
  },
  approveToken(r) {
    if (r.code !== 0) return ['', T + returned(r.op, r.code)];
    const d = r.data as ApproveTokenData;
    return ['', T + returned(r.op, 0), '', `${T}Token approved by ${d.approvals.length} of ${d.approvalsNeeded} user(s): ${d.approvals.join(', ')}`];
  },
};
