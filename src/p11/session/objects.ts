// Object management: find, attributes, create, copy, destroy.
import { decodeAttribute, type AttributeRead, type Template } from '../attributes.js';
import type { NativeModule } from '../native.js';

export function find(native: NativeModule, session: number, template: Template | undefined): Promise<number[]> {
  return native.findObjects(session, template);
}

export function getAttributeRaw(
  native: NativeModule,
  session: number,
  object: number,
  types: number[],
): Promise<AttributeRead[]> {
  return native.C_GetAttributeValue(session, object, types);
}

export async function getAttributes(
  native: NativeModule,
  session: number,
  object: number,
  types: number[],
): Promise<AttributeRead[]> {
  const reads: AttributeRead[] = await native.C_GetAttributeValue(session, object, types);
  for (const read of reads) {
    if ('value' in read) read.value = decodeAttribute(read.type, read.value as Buffer);
  }
  return reads;
}

export function setAttributes(native: NativeModule, session: number, object: number, template: Template): Promise<void> {
  return native.C_SetAttributeValue(session, object, template);
}

export function createObject(native: NativeModule, session: number, template: Template): Promise<number> {
  return native.C_CreateObject(session, template);
}

export function copyObject(native: NativeModule, session: number, object: number, template: Template): Promise<number> {
  return native.C_CopyObject(session, object, template);
}

/** One handle or many; many are destroyed in one pool job. */
export function destroyObject(native: NativeModule, session: number, object: number | number[]): Promise<void> {
  return native.C_DestroyObject(session, object);
}
