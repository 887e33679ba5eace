import { CKA } from '../p11/index.js';
import { KmuError, NoAnswer, UsageError } from '../kmu/errors.js';
import { RC } from '../kmu/returnCodes.js';
import { OBJ } from '../kmu/objAttr.js';
import * as v from '../kmu/values.js';
import { ok, type Command } from './types.js';
import { authorize } from './lib/ownership.js';

export interface SetAttributeOptions {
  handle: number;
  attribute: number;
  value?: number;
}

/**
 * kmu's setAttribute changes one attribute: OBJ_ATTR_TOKEN, from a session key to a persistent
 * one (value 1). The label and usage flags are cloudhsm_mgmt_util's, not kmu's.
 */
export const setAttribute: Command<SetAttributeOptions, { handle: number; attribute: number; value: number; prompted: boolean }> = {
  name: 'setAttribute',
  description: 'Sets an attribute of an object',
  op: 'Cfm3SetAttribute',
  needsLogin: true,
  syntax: 'setAttribute -h\n\nsetAttribute -o <object handle>\n             -a 1\n             [-v 1]',
  flags: [
    { flag: '-o', key: 'handle', parse: v.handle, required: true, metavar: '<object handle>' },
    {
      flag: '-a',
      key: 'attribute',
      parse: (t: string, flag: string) => {
        if (t !== String(OBJ.TOKEN))
          throw new UsageError(`${flag}: setAttribute changes only OBJ_ATTR_TOKEN (1), not '${t}'; the label and usage flags are changed with cloudhsm_mgmt_util`);
        return OBJ.TOKEN;
      },
      required: true,
      metavar: '<attribute>',
    },
    {
      flag: '-v',
      key: 'value',
      parse: (t: string, flag: string) => {
        if (t === '0') throw new UsageError(`${flag}: a persistent key cannot become a session key; the only valid value is 1`);
        if (t !== '1') throw new UsageError(`${flag}: OBJ_ATTR_TOKEN is a boolean value; the only valid value is 1, not '${t}'`);
        return 1;
      },
      metavar: '<value>',
    },
  ],
  async run(ctx, o) {
    let value = o.value;
    const prompted = value === undefined;
    if (value === undefined) {
      if (!ctx.prompt) throw new UsageError('setAttribute needs -v 1 when there is no terminal to ask for the value');
      const answer = (
        await ctx.prompt('         This attribute is defined as a boolean value.\n          Enter the boolean attribute value (0 or 1):', { hidden: false }).catch((e: unknown) => {
          if (e instanceof NoAnswer) throw new UsageError('setAttribute needs -v 1 when there is no terminal to ask for the value');
          throw e;
        })
      ).trim();
      if (answer !== '1') throw new KmuError(RC.ATTRIBUTE_INVALID, { detail: `the only valid value is 1, not '${answer}'` });
      value = 1;
    }
    const { session } = ctx.backend;
    const { object } = await authorize(ctx, o.handle, 'manage');
    const [token] = await session.getAttributes(object, [CKA.TOKEN]);
    if (!(token && 'value' in token && token.value === true) && ctx.backend.makeTokenKey) {
      // No C_CopyObject / C_SetAttributeValue there (CloudHSM SDK 5): the backend's own way.
      await ctx.backend.makeTokenKey(object);
    } else if (!(token && 'value' in token && token.value === true)) {
      // Tokens do not let CKA_TOKEN change in place: copy to a token object, move the handle
      // to the copy (durably), which destroys the session object. A crash before the handle
      // moves leaves a token key seen as new and a session key that dies with the process.
      const copy = await session.copyObject(object, [{ type: CKA.TOKEN, value: true }]);
      await ctx.handles.replace(o.handle, copy, object).catch(async (e: unknown) => {
        await session.destroyObject(copy).catch(() => undefined);
        throw e;
      });
    }
    return ok(setAttribute, { handle: o.handle, attribute: o.attribute, value, prompted });
  },
};
