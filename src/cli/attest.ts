// `kmu11 attest [--repin | --show]`: check the module and token (and on cloudhsm the HSMs)
// against the pins -attest uses, record them again after an intended upgrade, or print the
// facts as the config file's "attest" value takes them.
import { UsageError } from '../kmu/errors.js';
import type { CommandRunner } from '../kmu11.js';

const ATTEST_USAGE = 'usage: kmu11 attest [--repin | --show]';

export async function runAttest(runner: CommandRunner, args: string[], json: boolean): Promise<number> {
  if (args.length > 1 || (args[0] !== undefined && args[0] !== '--repin' && args[0] !== '--show')) throw new UsageError(ATTEST_USAGE);
  const { backend } = await runner.connect();
  if (args[0] === '--show') {
    process.stdout.write(JSON.stringify(await backend.attestationFacts(), null, 2) + '\n');
    return 0;
  }
  const r = await backend.attest({ repin: args[0] === '--repin' });
  if (json) process.stdout.write(JSON.stringify(r) + '\n');
  else if (r.result === 'PINNED') process.stdout.write(`Attestation pins recorded in ${r.path}\n`);
  else {
    process.stdout.write(`Attestation Check : [${r.result}]\n`);
    if (r.result === 'FAIL') process.stderr.write(`Error: differs from the pins (${r.pinsFrom === 'config' ? 'config file' : r.path}): ${r.differences.join(', ')}\n`);
  }
  return r.result === 'FAIL' ? 1 : 0;
}
