// kmu11's version: inlined by the bundler (scripts/bundle.mjs); read from package.json when run unbundled from dist/.
import { readFileSync } from 'node:fs';

declare const __KMU11_VERSION__: string | undefined;

export function version(): string {
  if (typeof __KMU11_VERSION__ === 'string') return __KMU11_VERSION__;
  return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}
