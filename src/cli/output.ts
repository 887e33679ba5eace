// Where results go: kmu's text on stdout (reasons and warnings on stderr), or one JSON object
// a command with --json.
import type { CommandResult } from '../commands/index.js';
import { hexCode, returnCodeText } from '../kmu/returnCodes.js';
import { formatSyntax, formatText } from './text.js';

export interface Output {
  result(r: CommandResult<any>): void;
  syntax(command: string, syntax: string): void;
  /** A line typed in batch mode, echoed after kmu's prompt. */
  echo(line: string): void;
  fatal(message: string): void;
}

export function textOutput(stdout = process.stdout, stderr = process.stderr): Output {
  return {
    result(r) {
      const err = (r.data as { error?: { usage?: string; detail?: string } }).error;
      // Bad input is one line on stderr: nothing reached the token, so no kmu status lines.
      if (err?.usage) return void stderr.write(`Error: ${err.usage}\n`);
      const text = formatText(r);
      if (text) stdout.write(text + '\n');
      if (err?.detail) stderr.write(`Error: ${err.detail}\n`);
      for (const w of r.warnings) stderr.write(w + '\n');
    },
    syntax(_command, syntax) {
      stdout.write(formatSyntax(syntax) + '\n');
    },
    echo(line) {
      stdout.write(`Command: ${line}\n`);
    },
    fatal(message) {
      stderr.write(`kmu11: ${message}\n`);
    },
  };
}

export function jsonOutput(stdout = process.stdout): Output {
  const emit = (o: unknown) => stdout.write(JSON.stringify(o) + '\n');
  return {
    result(r) {
      const { error, ...data } = r.data as { error?: unknown };
      emit({
        command: r.command,
        op: r.op,
        code: hexCode(r.code),
        text: returnCodeText(r.code) ?? null,
        ...(error ? { error } : {}),
        warnings: r.warnings,
        result: data,
      });
    },
    syntax(command, syntax) {
      emit({ command, code: hexCode(0), text: returnCodeText(0), warnings: [], result: { syntax } });
    },
    echo() {},
    fatal(message) {
      emit({ command: null, code: null, error: { fatal: message } });
    },
  };
}
