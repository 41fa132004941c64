// Files an operator names and the CLI edits (password file, ACL file, API keys, banned list).
// Read the same way: one message when the file cannot be read, thrown as the caller's own error
// class so each kind keeps its own handling (exit 1 at start, the old file kept on SIGHUP).
// Edited the same way: one line set, the rest kept, and the file replaced whole.
import * as fs from 'node:fs';
import * as path from 'node:path';

type ErrorClass = new (message: string) => Error;

export function readTextFile(file: string, error: ErrorClass): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new error(`${file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/**
 * Sets `line` in `file` (created 0600 if absent, else keeping its mode): it replaces the first
 * line `isIt` picks, or is appended; comments and other lines stay as they were. `check` parses
 * the old text first and throws if it is bad: a file the broker could not read is not rewritten.
 * Written to a temp file and renamed, so a broker reloading on SIGHUP never reads half a file.
 * Returns whether a line was replaced.
 */
export function setLine(file: string, error: ErrorClass, check: (text: string) => void, line: string, isIt: (l: string) => boolean): boolean {
  let text = '';
  let mode = 0o600;
  try {
    text = fs.readFileSync(file, 'utf8');
    mode = fs.statSync(file).mode & 0o777;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new error(`${file}: cannot read: ${(err as NodeJS.ErrnoException).code}`);
  }
  check(text);
  const lines = text === '' ? [] : text.replace(/\n$/, '').split('\n');
  const at = lines.findIndex((l) => !l.startsWith('#') && isIt(l));
  if (at >= 0) lines[at] = line;
  else lines.push(line);
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  fs.writeFileSync(tmp, lines.join('\n') + '\n', { mode });
  fs.renameSync(tmp, file);
  return at >= 0;
}
