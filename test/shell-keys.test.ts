// The interactive shell on a real pseudo-terminal: Ctrl-C cancels the running command or
// clears the line and the shell keeps reading; Ctrl-D ends it at an empty prompt and is a
// failed login at the -hpswd question; passwords stay out of the history file and the screen.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOGIN, makeHome } from './helpers/cli.js';
import { openShell } from './helpers/shell.js';

let h: ReturnType<typeof makeHome>;
beforeAll(() => {
  h = makeHome();
});
afterAll(() => h.cleanup());

describe('shell keys', () => {
  it('Ctrl-C while a command runs: the command ends, the shell keeps reading and runs the next command', async () => {
    const sh = await openShell(h.env);
    expect((await sh.send(LOGIN.join(' '))).join('\n')).toMatch(/Cfm3LoginHSM returned: 0x00/);
    // DSA domain parameters take SoftHSM a while: Ctrl-C lands while the command runs.
    await sh.press('genDSAKeyPair -m 2048 -l interrupted\n', 'genDSAKeyPair -m 2048 -l interrupted');
    const ctrlC = await sh.press('\x03');
    // The command's own answer (kmu's failure once it rolls back, or its result if it finished first).
    expect(ctrlC).toMatch(/Cfm3GenerateKeyPair:? returned: 0x/);
    const after = (await sh.send('findKey -l interrupted')).join('\n');
    expect(after).toMatch(/Cfm3FindKey returned: 0x00/);
    expect(await sh.exit()).not.toBe(null);
  });

  it('Ctrl-C at the prompt clears the line and the shell keeps reading', async () => {
    const sh = await openShell(h.env);
    await sh.press('genECCKeyPair -i 2 -l never-run\x03');
    const out = (await sh.send('Error2String -r 0xa8')).join('\n');
    expect(out).toMatch(/Invalid object handle/);
    expect(sh.screen()).not.toMatch(/Cfm3GenerateKeyPair/);
    expect(await sh.exit()).toBe(0);
  });

  it('Ctrl-D at an empty prompt ends the shell; its status is that of the commands run', async () => {
    const sh = await openShell(h.env);
    await sh.send('Error2String -r 0x00');
    sh.press('\x04', '\u0000never').catch(() => undefined);
    expect(await sh.closed()).toBe(0);
    const bad = await openShell(h.env);
    await bad.send('findKey -c 9');
    bad.press('\x04', '\u0000never').catch(() => undefined);
    expect(await bad.closed()).toBe(1);
  });

  it('Ctrl-D at the -hpswd question is a failed login; Ctrl-C there interrupts it; the shell goes on', async () => {
    const sh = await openShell(h.env);
    await sh.send('loginHSM -u CU -s crypto_user -hpswd', 'Enter password: ');
    const eof = await sh.press('\x04');
    expect(eof).toMatch(/Cfm3LoginHSM returned: 0xa5 : HSM Error: Invalid user name or password/);
    await sh.send('loginHSM -u CU -s crypto_user -hpswd', 'Enter password: ');
    const intr = await sh.press('\x03');
    expect(intr).toMatch(/Cfm3LoginHSM returned: 0x01/);
    expect(intr).toMatch(/interrupted/);
    await sh.send('loginHSM -u CU -s crypto_user -hpswd', 'Enter password: ');
    const ok = await sh.press('password\n');
    expect(ok).toMatch(/Cfm3LoginHSM returned: 0x00/);
    expect(ok).not.toContain('password\n'); // not echoed
    expect((await sh.send('findKey')).join('\n')).toMatch(/Cfm3FindKey returned: 0x00/);
    expect(await sh.exit()).toBe(1); // the failed logins count
  });

  it('keeps -p passwords out of the history file, masked as ******** (an older history is masked too)', async () => {
    mkdirSync(h.home, { recursive: true, mode: 0o700 });
    writeFileSync(join(h.home, 'history'), 'loginHSM -u CU -s crypto_user -p old-s3cret-in-history\n', { mode: 0o600 });
    const sh = await openShell(h.env);
    await sh.send('loginHSM -u CU -s crypto_user -p s3cret-in-history');
    await sh.send('loginHSM -u CU -s crypto_user -p "quoted s3cret-in-history" -bogus');
    await sh.send('loginHSMx -p s3cret-in-history');
    await sh.exit();
    const history = readFileSync(join(h.home, 'history'), 'utf8');
    expect(history).not.toContain('s3cret');
    expect(history).toContain('loginHSM -u CU -s crypto_user -p ********');
    expect(history).toContain('loginHSMx -p ********');
  });

  it('kmu11 passwd reads the passwords on a terminal without echoing them', async () => {
    const home = makeHome();
    try {
      const first = await openShell(home.env);
      await first.send('findKey'); // makes the home, its token and users
      await first.exit();
      const sh = await openShell(home.env, ['passwd', 'crypto_user'], 'Old password: ');
      await sh.press('password\n', 'New password: ');
      await sh.press('n3w-Secret-x\n', 'New password again: ');
      await sh.press('n3w-Secret-x\n', 'changed');
      expect(await sh.closed()).toBe(0);
      expect(sh.screen()).not.toMatch(/password\n|n3w-Secret/);
      const login = await openShell(home.env);
      expect((await login.send('loginHSM -u CU -s crypto_user -p n3w-Secret-x')).join('\n')).toMatch(/returned: 0x00/);
      await login.exit();
    } finally {
      home.cleanup();
    }
  });
});
