import { OBJ_ATTRS } from '../kmu/objAttr.js';
import { ok, type OfflineCommand } from './types.js';

export const listAttributes: OfflineCommand<Record<string, never>, { attributes: Array<{ name: string; id: number }> }> = {
  name: 'listAttributes',
  description: 'List all attributes for getAttributes',
  op: 'listAttributes',
  offline: true,
  syntax: 'listAttributes -h\n\nlistAttributes',
  flags: [],
  async run() {
    return ok(listAttributes, { attributes: OBJ_ATTRS.filter((a) => a.listed).map((a) => ({ name: a.name, id: a.id })) });
  },
};
