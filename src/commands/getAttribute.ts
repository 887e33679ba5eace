import type { AttributeDump } from '../api.js';
import { KmuError, UsageError } from '../kmu/errors.js';
import { RC } from '../kmu/returnCodes.js';
import { OBJ_ATTR_ALL, attributeDump, formatObjAttrValue, objAttr, type ObjAttr, type ObjAttrValue } from '../kmu/objAttr.js';
import * as v from '../kmu/values.js';
import { ok, type Command } from './types.js';
import { objAttrValues, readKey } from './lib/keys.js';
import { authorize } from './lib/ownership.js';
import { writeOut } from './lib/files.js';

export interface GetAttributeOptions {
  handle: number;
  attribute: number;
  out?: string;
}

/** The result: the library's AttributeDump. */
export type GetAttributeData = AttributeDump;

function attribute(text: string, flag: string): number {
  if (!/^[0-9]+$/.test(text) || (Number(text) !== OBJ_ATTR_ALL && !objAttr(Number(text))))
    throw new UsageError(`${flag} takes an attribute constant from listAttributes, or 512 for all, not '${text}'`);
  return Number(text);
}

function valueBytes(attr: ObjAttr, value: ObjAttrValue): number {
  if (Buffer.isBuffer(value)) return value.length;
  if (attr.format === 'bool') return 1;
  if (typeof value === 'number') return 4;
  return Buffer.byteLength(String(value), 'utf8');
}

export const getAttribute: Command<GetAttributeOptions, GetAttributeData> = {
  name: 'getAttribute',
  description: 'Reads an attribute from an object',
  op: 'Cfm3GetAttribute',
  needsLogin: true,
  syntax: `getAttribute -h

getAttribute -o <key handle>
             -a <attribute constant>
             -out <file>`,
  flags: [
    { flag: '-o', key: 'handle', parse: v.handle, required: true, metavar: '<key handle>' },
    { flag: '-a', key: 'attribute', parse: attribute, required: true, metavar: '<attribute constant>' },
    { flag: '-out', key: 'out', parse: v.text('file path'), metavar: '<file>' },
  ],
  async run(ctx, o) {
    const { session } = ctx.backend;
    const all = o.attribute === OBJ_ATTR_ALL;
    const { object } = await authorize(ctx, o.handle, 'see');
    const key = await readKey(session, object, await ctx.handles.publicValue(o.handle));
    const values = await objAttrValues(session, key, all ? undefined : o.attribute);
    if (!all && values.length === 0)
      throw new KmuError(RC.ATTRIBUTE_NOT_PRESENT, { detail: `key ${o.handle} has no ${objAttr(o.attribute)!.name}` });
    const attributes = values.map(([a, val]) => ({ name: a.name, id: a.id, value: formatObjAttrValue(a, val, !all) }));
    if (o.out !== undefined) {
      writeOut(o.out, attributeDump(attributes, all));
    }
    const size = values.reduce((n, [a, val]) => n + 8 + valueBytes(a, val), 0);
    return ok(getAttribute, { handle: o.handle, all, attributes, size, file: o.out });
  },
};
