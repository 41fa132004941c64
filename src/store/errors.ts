// Store failures the broker must report and exit on, never paper over: each carries a code the
// caller can switch on and a message that names the data directory and the operator's options.

export type StoreErrorCode =
  | 'CORRUPT'        // unreadable files or a value that does not decode
  | 'NEWER_FORMAT'   // written by a newer fleetmq
  | 'UNKNOWN_FORMAT' // non-empty directory without our format key
  | 'LOCKED'         // another process (or this one) already has the path open
  | 'IO'             // open/read/write failed for another reason
  | 'DATA_DIR'       // the data directory is unusable (a file in the way, not writable, /proc...)
  | 'TIMEOUT'        // the store did not open within the configured time
  | 'WRITE_FAILED'   // a commit failed; the in-memory index is ahead of disk
  | 'CLOSED';        // used after close()

export class StoreError extends Error {
  readonly code: StoreErrorCode;
  readonly path: string;

  constructor(code: StoreErrorCode, path: string, message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'StoreError';
    this.code = code;
    this.path = path;
  }
}

const MOVE_ASIDE = 'move the directory aside (or restore it from a backup) and start again; '
  + 'fleetmq never deletes a store it cannot read';

export function corruptStore(path: string, what: string, cause?: unknown): StoreError {
  const detail = cause instanceof Error ? `: ${cause.message}` : '';
  return new StoreError('CORRUPT', path,
    `store at ${path} is corrupt or unreadable (${what}${detail}); ${MOVE_ASIDE}`, cause);
}

export function newerFormat(path: string, found: number, supported: number): StoreError {
  return new StoreError('NEWER_FORMAT', path,
    `store at ${path} has format version ${found}, this fleetmq reads up to ${supported}; `
    + 'run a newer fleetmq on it, or point --data-dir at another directory');
}

export function unknownFormat(path: string): StoreError {
  return new StoreError('UNKNOWN_FORMAT', path,
    `${path} holds a RocksDB database that fleetmq did not create (no format key); `
    + 'point --data-dir at an empty or fleetmq directory');
}

/** Maps a RocksDB open/read error to a StoreError by its status text. */
export function fromRocksError(path: string, what: string, err: unknown): StoreError {
  const msg = err instanceof Error ? err.message : String(err);
  if (/lock/i.test(msg) && /IO error|Resource temporarily|busy/i.test(msg)) {
    return new StoreError('LOCKED', path,
      `store at ${path} is already open (${msg}); stop the other fleetmq using it, `
      + 'or give this one another --data-dir', err);
  }
  if (/corrupt|checksum|bad magic|not an sstable|MANIFEST|CURRENT/i.test(msg)) {
    return corruptStore(path, what, err);
  }
  return new StoreError('IO', path, `store at ${path}: ${what} failed: ${msg}`, err);
}
