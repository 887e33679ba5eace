import { ok, type OfflineCommand } from './types.js';

/** Ends the shell or batch; the CLI closes the backend (session keys die with it). */
export const exit: OfflineCommand<Record<string, never>, { exit: true }> = {
  name: 'exit',
  description: 'Exits this application',
  op: 'exit',
  offline: true,
  syntax: 'exit',
  flags: [],
  async run() {
    return ok(exit, { exit: true });
  },
};
