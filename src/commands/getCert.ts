import { KmuError, UsageError } from '../kmu/errors.js';
import { RC } from '../kmu/returnCodes.js';
import * as v from '../kmu/values.js';
import type { Command } from './types.js';

/** The page's partition certificate types. */
const CERT_TYPES: ReadonlyArray<{ id: number; name: string }> = [
  { id: 1, name: 'Manufacturer root certificate' },
  { id: 2, name: 'Manufacturer hardware certificate' },
  { id: 4, name: 'Customer root certificate' },
  { id: 8, name: 'Cluster certificate (signed by customer root certificate)' },
  { id: 16, name: 'Cluster certificate (chained to the manufacturer root certificate)' },
];

function certType(text: string, flag: string): number {
  const t = CERT_TYPES.find((c) => String(c.id) === text);
  if (!t) throw new UsageError(`${flag} takes a certificate type: ${CERT_TYPES.map((c) => c.id).join(', ')}; not '${text}'`);
  return t.id;
}

export const getCert: Command<{ file: string; type?: number; typeT?: number }, never> = {
  name: 'getCert',
  description: "Gets Partition Certificates stored on HSM",
  op: 'Cfm3GetCert',
  needsLogin: true,
  syntax: `getCert -h

getCert -f <file-name>
        -s <certificate-type>`,
  flags: [
    { flag: '-f', key: 'file', parse: v.text('file path'), required: true, metavar: '<file-name>' },
    // The page's example uses -s, its syntax block -t: both are taken.
    { flag: '-s', key: 'type', parse: certType, metavar: '<certificate-type>' },
    { flag: '-t', key: 'typeT', parse: certType, metavar: '<certificate-type>' },
  ],
  validate(o) {
    if (o.type === undefined && o.typeT === undefined) throw new UsageError('getCert: -s <certificate-type> is required');
  },
  async run(ctx, o) {
    const type = CERT_TYPES.find((c) => c.id === (o.type ?? o.typeT))!;
    // Partition certificates are an HSM's identity (its manufacturer's and its owner's PKI);
    // a PKCS#11 token, CloudHSM's SDK 5 library included, has none to give.
    throw new KmuError(RC.NOT_SUPPORTED, {
      detail: `the ${ctx.backend.kind} backend has no partition certificates (${type.name}); nothing was written to ${o.file}`,
    });
  },
};
