// A batch's progress on stderr (count, rate, ETA), only when stderr is a terminal: a pipe or a
// log file never sees it. The line is cleared before each command prints, and redrawn after.
import { fstatSync, readFileSync } from 'node:fs';

export interface Progress {
  /** Before a command prints its lines. */
  clear(): void;
  /** After a command: one more done. */
  step(): void;
  done(): void;
}

const NONE: Progress = { clear() {}, step() {}, done() {} };

/** How many command lines a batch file holds, when standard input is a file we can read ahead. */
function batchSize(): number | undefined {
  try {
    if (!fstatSync(0).isFile()) return undefined;
    // Read by path, not fd 0: the batch reader must still find the file at its start.
    const text = readFileSync('/dev/stdin', 'utf8');
    return text.split('\n').filter((l) => l.trim() !== '' && !l.trim().startsWith('#')).length;
  } catch {
    return undefined;
  }
}

function seconds(s: number): string {
  if (!Number.isFinite(s)) return '?';
  if (s < 60) return `${Math.ceil(s)}s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m}m${String(Math.ceil(s % 60)).padStart(2, '0')}s` : `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

export function batchProgress(stderr: NodeJS.WriteStream = process.stderr, now = () => performance.now()): Progress {
  if (!stderr.isTTY || process.env.TERM === 'dumb') return NONE;
  const total = batchSize();
  const start = now();
  let count = 0;
  let shown = false;
  const draw = () => {
    const elapsed = (now() - start) / 1000;
    const rate = elapsed > 0 ? count / elapsed : 0;
    let line = `kmu11: ${count}${total !== undefined ? `/${total}` : ''} commands, ${rate.toFixed(1)}/s`;
    if (total !== undefined && rate > 0) line += `, ETA ${seconds((total - count) / rate)}`;
    stderr.write(`\r${line}\x1b[K`);
    shown = true;
  };
  return {
    clear() {
      if (shown) stderr.write('\r\x1b[K');
      shown = false;
    },
    step() {
      count++;
      draw();
    },
    done() {
      if (shown) stderr.write('\r\x1b[K');
      shown = false;
    },
  };
}
