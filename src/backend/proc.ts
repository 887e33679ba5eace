// Is a process still running? What the locks and the handle store's session records ask of
// a pid they find on disk.
import { readFileSync } from 'node:fs';
import { errno } from './fsutil.js';

/** kill(pid, 0): the pid names a process (EPERM: one of another user's). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return errno(e) === 'EPERM';
  }
}

/** Linux: /proc/<pid>/stat field 22 (start time in clock ticks); '' elsewhere or when gone. */
export function startTime(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? '';
  } catch {
    return '';
  }
}

/**
 * Is the process `pid` that started at `start` (as startTime() gave) still running? On Linux
 * a pid reused by a later process does not count.
 */
export function processAlive(pid: number, start: string): boolean {
  if (process.platform === 'linux') {
    const now = startTime(pid);
    return now !== '' && (start === '' || now === start);
  }
  return pidAlive(pid);
}
