// Mosquitto's password file: one `user:hash` per line, `#` comments and blank lines ignored.
//   $7$<iterations>$<salt b64>$<hash b64>  PBKDF2-HMAC-SHA512 over the decoded salt, 64 bytes
//                                          (mosquitto_passwd 2.0: 12-byte salt, 101 iterations;
//                                          later: 64-byte salt, 1000 iterations)
//   $6$<salt b64>$<hash b64>               SHA-512(password bytes, then salt bytes) (mosquitto_passwd 1.x)
// Parsing never echoes a hash: an error names the file, the line number and what is wrong.
import * as crypto from 'node:crypto';
import { readTextFile, setLine } from '../shared/operator-files';

export const HASH_BYTES = 64;
/** What `fleetmq passwd` writes: Mosquitto 2.0 reads only 12-byte salts, any iteration count. */
export const NEW_SALT_BYTES = 12;
export const NEW_ITERATIONS = 1000;
const MAX_ITERATIONS = 10_000_000;

export interface PasswordEntry {
  kind: 6 | 7;
  /** 1 for `$6$` (one SHA-512). */
  iterations: number;
  salt: Buffer;
  hash: Buffer;
}

export class PasswordFileError extends Error {}

const B64 = /^[A-Za-z0-9+/]+={0,2}$/;

function decode(field: string | undefined, what: string, fail: (why: string) => never): Buffer {
  if (!field || !B64.test(field) || field.length % 4 !== 0) fail(`${what} is not base64`);
  return Buffer.from(field, 'base64');
}

/** Parses one hash field (the text after `user:`); `fail` throws with the caller's context. */
export function parseHash(field: string, fail: (why: string) => never): PasswordEntry {
  const parts = field.split('$');
  // '$7$it$salt$hash' splits into ['', '7', it, salt, hash].
  if (parts[0] !== '' || (parts[1] !== '6' && parts[1] !== '7')) {
    fail('the password is not a $6$ or $7$ hash (plain-text passwords must be hashed with mosquitto_passwd -U or fleetmq passwd)');
  }
  if (parts[1] === '7') {
    if (parts.length !== 5) fail('a $7$ hash has the form $7$iterations$salt$hash');
    if (!/^\d{1,8}$/.test(parts[2]) || Number(parts[2]) < 1 || Number(parts[2]) > MAX_ITERATIONS) {
      fail(`the iteration count must be an integer 1..${MAX_ITERATIONS}`);
    }
    const salt = decode(parts[3], 'the salt', fail);
    const hash = decode(parts[4], 'the hash', fail);
    if (hash.length !== HASH_BYTES) fail(`the hash must be ${HASH_BYTES} bytes`);
    return { kind: 7, iterations: Number(parts[2]), salt, hash };
  }
  if (parts.length !== 4) fail('a $6$ hash has the form $6$salt$hash');
  const salt = decode(parts[2], 'the salt', fail);
  const hash = decode(parts[3], 'the hash', fail);
  if (hash.length !== HASH_BYTES) fail(`the hash must be ${HASH_BYTES} bytes`);
  return { kind: 6, iterations: 1, salt, hash };
}

/** The users of a password file's text. Throws PasswordFileError naming `name` and the line. */
export function parsePasswordFile(text: string, name: string): Map<string, PasswordEntry> {
  const users = new Map<string, PasswordEntry>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].replace(/\r$/, '');
    const fail = (why: string): never => { throw new PasswordFileError(`${name}: line ${i + 1}: ${why}`); };
    if (line.trim() === '' || line.startsWith('#')) continue;
    const colon = line.indexOf(':');
    if (colon <= 0) fail('expected user:hash');
    const user = line.slice(0, colon);
    if (users.has(user)) fail(`user ${JSON.stringify(user)} appears twice`);
    users.set(user, parseHash(line.slice(colon + 1), fail));
  }
  return users;
}

export function readPasswordFile(file: string): Map<string, PasswordEntry> {
  return parsePasswordFile(readTextFile(file, PasswordFileError), file);
}

/** The 64-byte digest of `password` under an entry's salt and cost (the CPU-heavy part). */
export function digest(kind: 6 | 7, password: Buffer, salt: Buffer, iterations: number): Buffer {
  if (kind === 7) return crypto.pbkdf2Sync(password, salt, iterations, HASH_BYTES, 'sha512');
  return crypto.createHash('sha512').update(password).update(salt).digest();
}

/** Constant-time check of `password` against an entry. */
export function verify(entry: PasswordEntry, password: Buffer): boolean {
  return crypto.timingSafeEqual(digest(entry.kind, password, entry.salt, entry.iterations), entry.hash);
}

/** A `$7$` hash field as Mosquitto 2.0 reads it (12-byte salt). */
export function hashPassword(password: Buffer, iterations = NEW_ITERATIONS): string {
  const salt = crypto.randomBytes(NEW_SALT_BYTES);
  return `$7$${iterations}$${salt.toString('base64')}$${digest(7, password, salt, iterations).toString('base64')}`;
}

export function validUsername(user: string): string | null {
  if (user === '') return 'the username is empty';
  if (user.includes(':')) return 'a username cannot contain ":"';
  if (/[\r\n]/.test(user)) return 'a username cannot contain a line break';
  if (Buffer.byteLength(user) > 65535) return 'the username is longer than MQTT allows';
  return null;
}

/**
 * Sets `user`'s password in `file` (created 0600 if absent): its line is replaced in place,
 * or appended; comments and other users stay as they were. Written to a temp file and
 * renamed, so a broker reloading on SIGHUP never reads half a file.
 */
export function setPassword(file: string, user: string, password: Buffer, iterations = NEW_ITERATIONS): 'added' | 'updated' {
  const bad = validUsername(user);
  if (bad) throw new PasswordFileError(bad);
  const line = `${user}:${hashPassword(password, iterations)}`;
  const isUser = (l: string) => l.indexOf(':') > 0 && l.slice(0, l.indexOf(':')) === user;
  return setLine(file, PasswordFileError, (text) => parsePasswordFile(text, file), line, isUser) ? 'updated' : 'added';
}
