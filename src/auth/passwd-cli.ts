// `fleetmq passwd FILE USER`: adds or updates USER's line in a Mosquitto password file with a
// `$7$` hash that Mosquitto 2.0 reads too (12-byte salt). The password comes from --password,
// else from a prompt on a terminal (typed twice, not echoed), else from the first line of stdin.
import { setPassword, validUsername, NEW_ITERATIONS, PasswordFileError } from './password-file';

const USAGE = `Usage: fleetmq passwd [--password PASSWORD] [--iterations N] FILE USER

Adds USER to the Mosquitto password file FILE (created 0600 if absent), or sets a new password
for USER, as a $7$ PBKDF2-SHA512 hash that Mosquitto 2.0 and fleetmq --password-file both read.
The password comes from --password, else a prompt on a terminal, else the first line of stdin.
A running broker picks the change up on SIGHUP.

Options:
  --password PASSWORD   the password (visible to other users of this machine in ps: prefer stdin)
  --iterations N        PBKDF2 iterations [${NEW_ITERATIONS}]`;

class UsageError extends Error {}

function parse(argv: readonly string[]): { file: string; user: string; password?: string; iterations: number } | null {
  const positional: string[] = [];
  let password: string | undefined;
  let iterations = NEW_ITERATIONS;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--help' || a === '-h') return null;
    const eq = a.indexOf('=');
    const name = a.startsWith('--') && eq > 0 ? a.slice(0, eq) : a;
    const value = () => {
      const v = eq > 0 && a.startsWith('--') ? a.slice(eq + 1) : argv[++i];
      if (v === undefined) throw new UsageError(`${name} needs a value`);
      return v;
    };
    if (name === '--password') password = value();
    else if (name === '--iterations') {
      const v = value();
      if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 10_000_000) throw new UsageError(`--iterations: expected an integer 1..10000000, got ${JSON.stringify(v)}`);
      iterations = Number(v);
    } else if (a.startsWith('-') && a !== '-') throw new UsageError(`unknown option ${JSON.stringify(name)}`);
    else positional.push(a);
  }
  if (positional.length !== 2) throw new UsageError('expected FILE and USER');
  return { file: positional[0], user: positional[1], password, iterations };
}

/** Reads a line from a terminal without echoing it. */
function promptHidden(question: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const stdin = process.stdin;
    process.stderr.write(question);
    let line = '';
    stdin.setRawMode(true);
    stdin.resume();
    const onData = (d: Buffer) => {
      for (const ch of d.toString('utf8')) {
        if (ch === '\r' || ch === '\n') { done(); resolve(line); return; }
        if (ch === '\u0003') { done(); reject(new UsageError('cancelled')); return; }
        if (ch === '\u007f' || ch === '\b') line = line.slice(0, -1);
        else line += ch;
      }
    };
    const done = () => {
      stdin.removeListener('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write('\n');
    };
    stdin.on('data', onData);
  });
}

async function readStdinLine(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  const nl = text.indexOf('\n');
  return (nl >= 0 ? text.slice(0, nl) : text).replace(/\r$/, '');
}

async function getPassword(given: string | undefined): Promise<string> {
  if (given !== undefined) return given;
  if (process.stdin.isTTY) {
    const a = await promptHidden('Password: ');
    const b = await promptHidden('Reenter password: ');
    if (a !== b) throw new UsageError('the passwords do not match');
    return a;
  }
  return readStdinLine();
}

export async function passwdMain(argv: readonly string[]): Promise<number> {
  let args: ReturnType<typeof parse>;
  try {
    args = parse(argv);
  } catch (err) {
    process.stderr.write(`fleetmq passwd: ${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (!args) { process.stdout.write(USAGE + '\n'); return 0; }
  const bad = validUsername(args.user);
  if (bad) { process.stderr.write(`fleetmq passwd: ${bad}\n`); return 2; }
  try {
    const password = await getPassword(args.password);
    if (password === '') throw new UsageError('empty password');
    const what = setPassword(args.file, args.user, Buffer.from(password, 'utf8'), args.iterations);
    process.stdout.write(`fleetmq passwd: ${what} user ${JSON.stringify(args.user)} in ${args.file}\n`);
    return 0;
  } catch (err) {
    if (err instanceof UsageError || err instanceof PasswordFileError) {
      process.stderr.write(`fleetmq passwd: ${err.message}\n`);
      return err instanceof UsageError ? 2 : 1;
    }
    process.stderr.write(`fleetmq passwd: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}\n`);
    return 1;
  }
}
