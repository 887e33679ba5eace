// The examples of the key_mgmt_util reference pages, read from test/fixtures/pages (copies of
// AWS's pages, see its README), and the
// comparison rules: lines compared trimmed, key handles masked, and a page's several cluster
// nodes ("Node id 2 …, Node id 1 …, Node id 0 …") standing for our one-node token.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const REFERENCE = fileURLToPath(new URL('../fixtures/pages/', import.meta.url));

export interface PageExample {
  /** The command as typed after "Command:". */
  command: string;
  /** The output lines after the command line. */
  output: string[];
}

export interface PageBlock {
  lines: string[];
}

/** Code blocks of a reference page, unescaped. */
export function pageBlocks(file: string): PageBlock[] {
  const text = readFileSync(REFERENCE + file, 'utf8');
  const blocks: PageBlock[] = [];
  const re = /```\n([\s\S]*?)```/g;
  for (let m; (m = re.exec(text)); ) blocks.push({ lines: m[1]!.replace(/\n$/, '').split('\n') });
  return blocks;
}

/** Blocks that show a command and what it printed; a block with several commands gives several. */
export function pageExamples(file: string): PageExample[] {
  const out: PageExample[] = [];
  for (const b of pageBlocks(file)) {
    let current: PageExample | undefined;
    for (const line of b.lines) {
      if (line.trim().startsWith('Command:')) {
        current = { command: line.trim().replace(/^Command:\s*/, ''), output: [] };
        out.push(current);
      } else current?.output.push(line);
    }
  }
  return out;
}

/** Lines as compared: trimmed, trailing blanks dropped, handles masked, nodes folded. */
export function normalize(lines: string[]): string[] {
  const out: string[] = [];
  for (const raw of lines) {
    let l = raw.trim();
    l = l.replace(/(public key handle: )\d+(\s+private key handle: )\d+/, '$1H$2H');
    if (/^\d+(, \d+)*$/.test(l)) l = l.replace(/\d+/g, 'H');
    l = l.replace(/^Node id \d+ /, 'Node id N ');
    if (l.startsWith('Node id N ') && out[out.length - 1] === l) continue;
    out.push(l);
  }
  while (out.length && out[out.length - 1] === '') out.pop();
  while (out.length && out[0] === '') out.shift();
  return out;
}
