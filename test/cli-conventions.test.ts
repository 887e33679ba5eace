// What a CLI people live in is expected to do: --help / -h / --version, `singlecmd -h`, bash and
// zsh completion generated from the command table, and a batch's progress line on stderr only
// when stderr is a terminal.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COMMANDS } from '../src/commands/index.js';
import { CLI, kmu11 } from './helpers/cli.js';

const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
let dir: string;
let env: NodeJS.ProcessEnv;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'kmu11-conventions-'));
  env = { KMU11_HOME: join(dir, 'home'), KMU11_MODULE: '', KMU11_TOKEN: '', KMU11_CONFIG: '' };
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('--help, -h, --version', () => {
  it('prints usage for --help and -h, also after global options, exit 0', () => {
    for (const args of [['--help'], ['-h'], ['--json', '--help'], ['--home', '/nonexistent', '-h']]) {
      const r = kmu11(args, { env });
      expect(r.status).toBe(0);
      expect(r.stderr).toBe('');
      expect(r.stdout).toMatch(/^usage: kmu11 /);
      expect(r.stdout).toContain('completion bash|zsh');
    }
  });

  it('prints the package version', () => {
    expect(kmu11(['--version'], { env })).toEqual({ status: 0, stdout: `kmu11 ${VERSION}\n`, stderr: '' });
  });

  it('singlecmd -h (and singlecmd alone) shows what singlecmd help shows', () => {
    const help = kmu11(['singlecmd', 'help'], { env });
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('Help Commands Available');
    for (const args of [['singlecmd', '-h'], ['singlecmd']]) expect(kmu11(args, { env })).toEqual(help);
  });

  it('an unknown option is still one line and exit 2', () => {
    const r = kmu11(['--versoin'], { env });
    expect(r.status).toBe(2);
    expect(r.stderr.split('\n')[0]).toBe('kmu11: unknown option --versoin');
  });
});

describe('completion', () => {
  const names = COMMANDS.map((c) => c.name);
  const flagsOf = (name: string) => ['-h', ...COMMANDS.find((c) => c.name === name)!.flags.map((f) => f.flag)];

  function script(shell: string): string {
    const r = kmu11(['completion', shell], { env });
    expect(r.status).toBe(0);
    const file = join(dir, `completion.${shell}`);
    writeFileSync(file, r.stdout);
    return file;
  }

  function bash(words: string[]): string[] {
    const file = script('bash');
    const quoted = words.map((w) => `'${w}'`).join(' ');
    const out = execFileSync('bash', ['-c', `source ${file}; COMP_WORDS=(${quoted}); COMP_CWORD=${words.length - 1}; _kmu11; printf '%s\\n' "\${COMPREPLY[@]}"`], {
      encoding: 'utf8',
    });
    return out.split('\n').filter(Boolean).sort();
  }

  function zsh(words: string[]): string[] {
    const file = script('zsh');
    const quoted = words.map((w) => `'${w}'`).join(' ');
    // Outside a completion widget: compadd and _files print what they were given (zsh filters by prefix itself).
    const stubs = `compdef() { :; }; compadd() { [[ $1 == -- ]] && shift; print -l -- "$@"; }; _files() { print FILES; }`;
    const out = execFileSync('zsh', ['-f', '-c', `${stubs}; source ${file}; words=(${quoted}); CURRENT=${words.length}; PREFIX='${words.at(-1)}'; _kmu11`], {
      encoding: 'utf8',
    });
    return out.split('\n').filter(Boolean).sort();
  }

  it('bash: modes first, then command names of the table, then the flags of the command being typed', () => {
    expect(bash(['kmu11', ''])).toEqual(['--help', '--home', '--json', '--module', '--token', '--version', '-h', 'completion', 'info', 'passwd', 'singlecmd']);
    expect(bash(['kmu11', 'singlecmd', 'gen'])).toEqual(names.filter((n) => n.startsWith('gen')).sort());
    expect(bash(['kmu11', '--home', '/x', 'singlecmd', ''])).toEqual([...names].sort());
    expect(bash(['kmu11', 'singlecmd', 'loginHSM', '-u', 'CU', 'genECCKeyPair', '-'])).toEqual(flagsOf('genECCKeyPair').sort());
    expect(bash(['key_mgmt_util', 'completion', ''])).toEqual(['bash', 'zsh']);
  });

  it('zsh: the same words from the same table', () => {
    expect(zsh(['kmu11', ''])).toEqual(['--help', '--home', '--json', '--module', '--token', '--version', '-h', 'completion', 'info', 'passwd', 'singlecmd']);
    expect(zsh(['kmu11', 'singlecmd', 'gen'])).toEqual([...names].sort());
    expect(zsh(['kmu11', 'singlecmd', 'findKey', '-'])).toEqual(flagsOf('findKey').sort());
    expect(zsh(['kmu11', 'singlecmd', 'getAttribute', '-out', ''])).toEqual(['FILES']);
    expect(zsh(['kmu11', 'completion', ''])).toEqual(['bash', 'zsh']);
  });

  it('refuses a shell it has no script for', () => {
    const r = kmu11(['completion', 'fish'], { env });
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe("kmu11: completion takes bash or zsh, not 'fish'\n");
  });
});

describe('batch progress', () => {
  const batch = ['Error2String -r 0xdb', '# a comment', 'listAttributes', '', 'Error2String -r 0xa8'].join('\n') + '\n';

  /** The CLI in batch mode from a file, its stderr on a pseudo-terminal (or a pipe), stdout a pipe. */
  function runBatch(stderrTty: boolean): { stdout: string; stderr: string; status: number } {
    const file = join(dir, 'batch.kmu');
    writeFileSync(file, batch);
    const py = String.raw`
import json, os, pty, subprocess, sys
node, cli, path, tty = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == '1'
m, s = pty.openpty() if tty else os.pipe()
with open(path, 'rb') as stdin:
    p = subprocess.Popen([node, cli], stdin=stdin, stdout=subprocess.PIPE, stderr=s)
os.close(s)
err = b''
while True:
    try:
        chunk = os.read(m, 4096)
    except OSError:
        break
    if not chunk:
        break
    err += chunk
out = p.stdout.read()
print(json.dumps({'stdout': out.decode(), 'stderr': err.decode(), 'status': p.wait()}))
`;
    const r = spawnSync('/usr/bin/python3', ['-c', py, process.execPath, CLI, file, stderrTty ? '1' : '0'], {
      env: { ...process.env, ...env, TERM: 'xterm' },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.stderr).toBe('');
    return JSON.parse(r.stdout);
  }

  it('on a terminal: count, rate and ETA on stderr, cleared at the end; stdout as without it', () => {
    const tty = runBatch(true);
    const pipe = runBatch(false);
    expect(tty.status).toBe(0);
    expect(tty.stdout).toBe(pipe.stdout);
    expect(tty.stdout).toContain('Command:  listAttributes');
    expect(tty.stdout).not.toMatch(/commands, /);
    expect(tty.stderr).toMatch(/\rkmu11: 1\/3 commands, [0-9.]+\/s, ETA \d+s\x1b\[K/);
    expect(tty.stderr).toMatch(/\rkmu11: 3\/3 commands, [0-9.]+\/s, ETA 0s\x1b\[K/);
    expect(tty.stderr.endsWith('\r\x1b[K')).toBe(true);
  });

  it('never in a pipe', () => {
    const pipe = runBatch(false);
    expect(pipe.status).toBe(0);
    expect(pipe.stderr).toBe('');
  });
});
