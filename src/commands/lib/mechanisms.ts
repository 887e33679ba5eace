import { ckmName } from '../../p11/index.js';
import type { Backend } from '../../backend/index.js';
import { KmuError } from '../../kmu/errors.js';
import { RC } from '../../kmu/returnCodes.js';

/**
 * Refuses, before anything is made, a generation the token does not offer (some tokens, such as
 * SoftHSM with slots.mechanisms, would still run it). `what` says what was asked for.
 */
export async function requireMechanisms(backend: Backend, what: string, needed: number[], hint?: string): Promise<void> {
  const offered = await backend.mechanisms();
  const missing = needed.filter((m) => !offered.includes(m));
  if (missing.length > 0)
    throw new KmuError(RC.MECHANISM_NOT_SUPPORTED, {
      detail: `${what}: it does not offer ${missing.map(ckmName).join(', ')}${hint ? `; ${hint}` : ''}`,
    });
}
