// The layers as DESIGN.md draws them, checked on the source: above src/backend/ only its
// interface (backend/index.ts) is imported, and the commands and kmu tables take nothing but
// types from it (what they do on the token goes through their context); formatters never reach
// PKCS#11; nothing imports upwards; the library (src/index.ts) reaches nothing of src/cli/.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = new URL('../src/', import.meta.url).pathname;

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

/** Every import of a file: what it names (resolved against src/) and whether it is type-only. */
function imports(file: string): Array<{ target: string; typeOnly: boolean; line: string }> {
  const out = [];
  for (const m of readFileSync(file, 'utf8').matchAll(/^(?:import|export)\s+(type\s+)?[^;]*?from\s+'(\.[^']+)'/gms)) {
    const target = relative(SRC, join(file, '..', m[2]!));
    out.push({ target, typeOnly: !!m[1], line: m[0].replace(/\s+/g, ' ') });
  }
  return out;
}

const inRoom = (room: string) => files(join(SRC, room)).map((f) => ({ file: relative(SRC, f), imports: imports(f) }));

describe('layers', () => {
  it('reads its imports (the check below would pass on nothing otherwise)', () => {
    const keygen = imports(join(SRC, 'commands/lib/keygen.ts'));
    expect(keygen.some((i) => i.target === 'backend/index.js' && i.typeOnly)).toBe(true);
    expect(keygen.some((i) => i.target === 'kmu/errors.js' && !i.typeOnly)).toBe(true);
  });

  it('cli, commands, kmu and the runner reach src/backend/ only through backend/index.ts', () => {
    const rooms = [...inRoom('cli'), ...inRoom('commands'), ...inRoom('kmu'), ...['kmu11.ts', 'batch.ts', 'index.ts', 'api.ts'].map((f) => ({ file: f, imports: imports(join(SRC, f)) }))];
    const crossing = rooms.flatMap((r) => r.imports.filter((i) => i.target.startsWith('backend/') && i.target !== 'backend/index.js').map((i) => `${r.file}: ${i.line}`));
    expect(crossing).toEqual([]);
  });

  it('commands and kmu take only types from the backend: its work reaches them through CommandContext', () => {
    const rooms = [...inRoom('commands'), ...inRoom('kmu')];
    const values = rooms.flatMap((r) => r.imports.filter((i) => i.target.startsWith('backend/') && !i.typeOnly).map((i) => `${r.file}: ${i.line}`));
    expect(values).toEqual([]);
  });

  it('nothing imports upwards (p11 and backend know no command or formatter; commands and kmu no formatter)', () => {
    const up = (room: string, above: string[]) =>
      inRoom(room).flatMap((r) => r.imports.filter((i) => above.some((a) => i.target.startsWith(a))).map((i) => `${r.file}: ${i.line}`));
    expect(up('p11', ['backend/', 'kmu/', 'commands/', 'cli/', 'kmu11', 'batch'])).toEqual([]);
    expect(up('backend', ['commands/', 'cli/', 'kmu11', 'batch'])).toEqual([]);
    expect(up('commands', ['cli/', 'kmu11', 'batch'])).toEqual([]);
    expect(up('kmu', ['commands/', 'cli/', 'kmu11', 'batch'])).toEqual([]);
  });

  it('the library reaches no file of src/cli/, and nothing outside src/cli/ imports it', () => {
    // What a file (relative to src/) names through static, type and dynamic imports.
    const targets = (file: string) => [
      ...imports(join(SRC, file)).map((i) => i.target),
      ...[...readFileSync(join(SRC, file), 'utf8').matchAll(/\bimport\(\s*'(\.[^']+)'\s*\)/g)].map((m) => relative(SRC, join(SRC, file, '..', m[1]!))),
    ];
    const reached = new Set<string>();
    const visit = (file: string) => {
      if (reached.has(file)) return;
      reached.add(file);
      for (const target of targets(file)) visit(target.replace(/\.js$/, '.ts'));
    };
    visit('index.ts');
    expect(reached.size).toBeGreaterThan(50);
    expect(reached.has('kmu11.ts') && reached.has('backend/embedded.ts')).toBe(true);
    expect([...reached].filter((f) => f.startsWith('cli/'))).toEqual([]);
    const outside = files(SRC)
      .map((f) => relative(SRC, f))
      .filter((f) => !f.startsWith('cli/'))
      .flatMap((f) => targets(f).filter((t) => t.startsWith('cli/')).map((t) => `${f} imports ${t}`));
    expect(outside).toEqual([]);
  });

  it('commands keep no caches of the backend (the backend owns its capability caches and locks)', () => {
    const caching = inRoom('commands').filter((r) => /new WeakMap|withLock|\.lock'/.test(readFileSync(join(SRC, r.file), 'utf8')));
    expect(caching.map((r) => r.file)).toEqual([]);
  });
});
