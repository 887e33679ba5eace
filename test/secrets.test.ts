// Passwords never leak: not in the batch echo, error text, --json, the process's own command
// line (what ps and other processes see), nor in output when read by -hpswd from standard
// input or KMU11_PASSWORD. (History and the terminal: shell-keys.test.ts. PIN file modes:
// embedded.test.ts.)
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kmu11, makeHome, startKmu11 } from './helpers/cli.js';

const SECRET = 'Pa55-leak-canary';
let h: ReturnType<typeof makeHome>;
beforeAll(() => {
  h = makeHome();
  // The embedded token's crypto_user gets SECRET as password (read from standard input).
  expect(kmu11(['singlecmd', 'Error2String', '-r', '0x00'], { env: h.env }).status).toBe(0);
  expect(kmu11(['singlecmd', 'findKey'], { env: h.env }).status).not.toBe(2);
  const r = kmu11(['passwd', 'crypto_user'], { env: h.env, input: `password\n${SECRET}\n${SECRET}\n` });
  expect(r.status, r.stderr).toBe(0);
});
afterAll(() => h.cleanup());

const login = (password = SECRET) => `loginHSM -u CU -s crypto_user -p ${password}`;
const leaks = (r: { stdout: string; stderr: string }) => (r.stdout + r.stderr).includes(SECRET) || (r.stdout + r.stderr).includes('Pa55');

describe('secrets', () => {
  it('batch echo masks -p as ********, in text and through errors', () => {
    const input = [login(), `loginHSM -u CU -s crypto_user -p ${SECRET} -bogus`, `loginHSM -p ${SECRET} -u CU`, `loginHSMx -p ${SECRET}`, `loginHSM -u CU -s crypto_user -p "${SECRET}`].join('\n') + '\n';
    const r = kmu11([], { env: h.env, input });
    expect(r.stdout).toContain('Command:  loginHSM -u CU -s crypto_user -p ********');
    expect(r.stdout).toContain('Command:  loginHSMx -p ********');
    expect(r.stdout).toMatch(/Cfm3LoginHSM returned: 0x00/);
    expect(leaks(r), r.stdout + r.stderr).toBe(false);
  });

  it('--json carries no password, for success, usage errors and wrong passwords', () => {
    const input = [login(), `loginHSM -u CU -s crypto_user -p ${SECRET} -x`, 'logoutHSM', login(SECRET + 'x')].join('\n') + '\n';
    const r = kmu11(['--json'], { env: h.env, input });
    const objects = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(objects.map((o) => o.code)).toEqual(['0x00', '0x02', '0x00', '0xa5']);
    expect(r.stdout + r.stderr).not.toContain(SECRET);
  });

  it('-hpswd without a terminal reads the next line as the password: not run, not echoed, not in errors', () => {
    const r = kmu11([], { env: h.env, input: `loginHSM -u CU -s crypto_user -hpswd\n${SECRET}\nfindKey\n` });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Cfm3LoginHSM returned: 0x00/);
    expect(r.stdout).toMatch(/Cfm3FindKey returned: 0x00/);
    expect(leaks(r)).toBe(false);
    const wrong = kmu11([], { env: h.env, input: `loginHSM -u CU -s crypto_user -hpswd\n${SECRET}-wrong\n` });
    expect(wrong.stdout).toMatch(/Cfm3LoginHSM returned: 0xa5/);
    expect(leaks(wrong)).toBe(false);
    const json = kmu11(['--json'], { env: h.env, input: `loginHSM -u CU -s crypto_user -hpswd\n${SECRET}\n` });
    expect(JSON.parse(json.stdout.trim()).code).toBe('0x00');
    expect(leaks(json)).toBe(false);
    // Standard input ends at the question: a failed login, not a crash.
    const none = kmu11(['singlecmd', 'loginHSM', '-u', 'CU', '-s', 'crypto_user', '-hpswd'], { env: h.env, input: '' });
    expect(none.status).toBe(1);
    expect(none.stdout).toMatch(/Cfm3LoginHSM returned: 0xa5/);
    expect(none.stderr).toMatch(/^Error: no password given$/m);
  });

  it('singlecmd -hpswd reads standard input; KMU11_PASSWORD answers -hpswd with nothing on any input', () => {
    const piped = kmu11(['singlecmd', 'loginHSM', '-u', 'CU', '-s', 'crypto_user', '-hpswd', 'findKey'], { env: h.env, input: SECRET + '\n' });
    expect(piped.status, piped.stderr).toBe(0);
    expect(leaks(piped)).toBe(false);
    const env = { ...h.env, KMU11_PASSWORD: SECRET };
    const fromEnv = kmu11(['singlecmd', 'loginHSM', '-u', 'CU', '-s', 'crypto_user', '-hpswd', 'findKey'], { env });
    expect(fromEnv.status, fromEnv.stderr).toBe(0);
    expect(leaks(fromEnv)).toBe(false);
    const batch = kmu11([], { env, input: 'loginHSM -u CU -s crypto_user -hpswd\nfindKey\n' });
    expect(batch.status, batch.stderr).toBe(0);
    expect(batch.stdout).toMatch(/Command:  findKey/);
    // -p still wins over the variable.
    const wrong = kmu11(['singlecmd', 'loginHSM', '-u', 'CU', '-s', 'crypto_user', '-p', 'nope'], { env });
    expect(wrong.stdout).toMatch(/returned: 0xa5/);
  });

  it('a -p password in the arguments is masked in the process command line while kmu11 runs', async () => {
    // DSA domain parameters keep the process alive long enough to read its command line.
    const p = startKmu11(['singlecmd', 'loginHSM', '-u', 'CU', '-s', 'crypto_user', '-p', SECRET, 'genDSAKeyPair', '-m', '2048', '-l', 'cmdline', '-sess'], { env: h.env });
    const seen: string[] = [];
    while (!p.exited()) {
      try {
        seen.push(readFileSync(`/proc/${p.child.pid}/cmdline`, 'utf8').replace(/\0/g, ' '));
      } catch {
        break;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    const r = await p.done;
    expect(r.status, r.stderr).toBe(0);
    const late = seen.filter((s) => s.includes('genDSAKeyPair') || s.includes('kmu11 singlecmd'));
    expect(late.some((s) => s.includes('-p ********'))).toBe(true);
    // Only the first moments (before kmu11 runs its first line) may show what the caller typed.
    expect(seen.slice(-3).every((s) => !s.includes(SECRET)), seen.slice(-3).join('\n')).toBe(true);
  });

  it('error text never quotes a password: wrong, locked-out and unknown-user logins', () => {
    for (const input of [login(SECRET + '1'), `loginHSM -u CU -s nosuch -p ${SECRET}`, `loginHSM -u CO -s admin -p ${SECRET}`]) {
      const r = kmu11([], { env: h.env, input: input + '\n' });
      expect(r.status).toBe(1);
      expect(leaks(r), r.stdout + r.stderr).toBe(false);
    }
  });
});
