// One password check, run by a piscina pool thread (src/auth/auth-service.ts): the hash is
// ~0.05-0.4 ms of CPU that must never run on a serving worker's or the main thread's loop.
import { digest } from './password-file';
import * as crypto from 'node:crypto';

export interface HashJob {
  kind: 6 | 7;
  iterations: number;
  password: Uint8Array;
  salt: Uint8Array;
  hash: Uint8Array;
}

const buf = (u: Uint8Array) => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

/** True when the password matches (compared in constant time). */
export default function check(job: HashJob): boolean {
  return crypto.timingSafeEqual(digest(job.kind, buf(job.password), buf(job.salt), job.iterations), buf(job.hash));
}
