// Backend code in a fresh Node process (SoftHSM reads SOFTHSM2_CONF once per process), with
// an environment free of the caller's kmu11 settings.
import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';

const REPO = resolve(import.meta.dirname, '../..');
const ENTRY = join(REPO, 'src/backend/index.ts');

/** process.env without any KMU11_* or SOFTHSM2_CONF, plus `extra`. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('KMU11_') && k !== 'SOFTHSM2_CONF') env[k] = v;
  return { ...env, ...extra };
}

/**
 * Run `body` (an async function body with `kmu` = src/backend/index.ts and `input`) in a fresh
 * Node process; resolves to the JSON value the body returns.
 */
export function runChild(body: string, input: unknown, env: NodeJS.ProcessEnv = cleanEnv()): Promise<any> {
  const script = `
    import { runnerImport } from 'vite';
    const { module: kmu } = await runnerImport(${JSON.stringify(ENTRY)}, { root: ${JSON.stringify(REPO)}, configFile: false, logLevel: 'silent' });
    const input = JSON.parse(process.env.KMU11_TEST_INPUT);
    const run = async () => { ${body} };
    try { console.log('RESULT ' + JSON.stringify(await run())); }
    catch (e) { console.log('RESULT ' + JSON.stringify({ error: { name: e.name, message: e.message, code: e.code } })); }
    process.exit(0);
  `;
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      cwd: REPO,
      env: { ...env, KMU11_TEST_INPUT: JSON.stringify(input) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', rej);
    child.on('close', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('RESULT '));
      if (code !== 0 || !line) rej(new Error(`child exited ${code}: ${out}\n${err}`));
      else res(JSON.parse(line.slice(7)));
    });
  });
}
