// Worker ↔ main thread messages of the password check (one MessagePort per worker, made by the
// supervisor; the main thread owns the password table, the hashing pool and the cache).

/** worker → main: check a username and password. `addr` is for the refusal log only. */
export interface AuthRequest { t: 'check'; id: number; user: string; password: Uint8Array | null; addr: string }
/** worker → main: a refusal the worker decided itself (anonymous client), to be logged. */
export interface AuthRefusedNote { t: 'refused'; addr: string; why: string }
/** main → worker: the verdict for request `id`. */
export interface AuthReply { id: number; verdict: Verdict }

export const enum Verdict {
  OK = 0,
  /** Unknown user or wrong password: CONNACK v3 4 / v5 0x86. */
  BAD_CREDENTIALS = 1,
  /** The hashing queue is full: CONNACK v3 3 / v5 0x89 at once. */
  BUSY = 2,
}
