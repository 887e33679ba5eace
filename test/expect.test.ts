// kmu's shell driven by an expect script in the style operators wrote for key_mgmt_util 3.x
// (test/expect/kmu-session.exp, run by Debian's expect): prompt "Command:  ", login, findKey,
// a new key, deleteKey, each checked by its status line.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { findCommand } from '../src/commands/index.js';
import { CLI, makeHome } from './helpers/cli.js';

const SCRIPT = fileURLToPath(new URL('./expect/kmu-session.exp', import.meta.url));
let h: ReturnType<typeof makeHome>;
beforeAll(() => {
  h = makeHome();
});
afterAll(() => h.cleanup());

// genSymKey as the operators' scripts use it, once kmu11 has it; an EC pair until then.
const KEYGEN = findCommand('genSymKey') ? 'genSymKey -t 31 -s 32 -l expect-key' : 'genECCKeyPair -i 2 -l expect-key';

const runExpect = (env: NodeJS.ProcessEnv) =>
  spawnSync('expect', ['-f', SCRIPT], {
    env: { ...process.env, ...h.env, KMU11_CMD: `${process.execPath} ${CLI}`, KMU_KEYGEN: KEYGEN, KMU_PASSWORD: 'password', ...env },
    encoding: 'utf8',
    timeout: 120_000,
  });

it(`logs in, finds keys, makes one (${KEYGEN.split(' ')[0]}) and deletes it, waiting for each SUCCESS line`, () => {
  const r = runExpect({});
  expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
  expect(r.stdout).toMatch(/Cfm3DeleteKey returned: 0x00 : HSM Return: SUCCESS/);
});

it('fails when a status line says otherwise (a wrong password)', () => {
  const r = runExpect({ KMU_PASSWORD: 'wrong-password' });
  expect(r.status).toBe(1);
  expect(r.stderr).toMatch(/expect: login failed/);
});
