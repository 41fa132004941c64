// A worker's or the coordinator's logger. Threads other than the main one never write to
// stdout: a record is one JSON text in this thread's log ring (an SPSC ring in a
// SharedArrayBuffer, src/shared/ring.ts), which the main thread drains and writes (log-hub.ts).
// Full ring: the record is dropped and counted (log-state.ts), the thread never waits. Below
// the level in force a call costs one Atomics.load; callers that build fields pass a function.
import { RingProducer } from '../shared/ring';
import { LEVELS } from './levels';
import { S_LEVEL, threadDropSlot } from './log-state';

export type Fields = Record<string, unknown>;

/** What a thread's log ring and level are, handed over in its wiring. */
export interface LogWiring {
  ring: SharedArrayBuffer;
  bell: SharedArrayBuffer;
  state: SharedArrayBuffer;
  /** This thread's drop slot (worker index, or workers for the coordinator). */
  slot: number;
}

export interface Logger {
  enabled(level: number): boolean;
  trace(msg: string, fields?: Fields | (() => Fields)): void;
  debug(msg: string, fields?: Fields | (() => Fields)): void;
  info(msg: string, fields?: Fields | (() => Fields)): void;
  warn(msg: string, fields?: Fields | (() => Fields)): void;
  error(msg: string, fields?: Fields | (() => Fields)): void;
  fatal(msg: string, fields?: Fields | (() => Fields)): void;
}

/** Errors as JSON can carry them: message and stack (JSON.stringify drops both). */
export function errFields(err: unknown): Fields {
  if (err instanceof Error) return { type: err.name, message: err.message, stack: err.stack ?? '' };
  return { message: String(err) };
}

export abstract class BaseLogger implements Logger {
  abstract enabled(level: number): boolean;
  protected abstract emit(level: number, msg: string, fields: Fields | undefined): void;
  private at(level: number, msg: string, fields?: Fields | (() => Fields)): void {
    if (!this.enabled(level)) return;
    this.emit(level, msg, typeof fields === 'function' ? fields() : fields);
  }
  trace(msg: string, f?: Fields | (() => Fields)): void { this.at(LEVELS.trace, msg, f); }
  debug(msg: string, f?: Fields | (() => Fields)): void { this.at(LEVELS.debug, msg, f); }
  info(msg: string, f?: Fields | (() => Fields)): void { this.at(LEVELS.info, msg, f); }
  warn(msg: string, f?: Fields | (() => Fields)): void { this.at(LEVELS.warn, msg, f); }
  error(msg: string, f?: Fields | (() => Fields)): void { this.at(LEVELS.error, msg, f); }
  fatal(msg: string, f?: Fields | (() => Fields)): void { this.at(LEVELS.fatal, msg, f); }
}

export class ThreadLog extends BaseLogger {
  private readonly ring: RingProducer;
  private readonly state: Int32Array;
  private readonly dropSlot: number;

  constructor(w: LogWiring) {
    super();
    this.ring = new RingProducer(w.ring, w.bell);
    this.state = new Int32Array(w.state);
    this.dropSlot = threadDropSlot(w.slot);
  }

  enabled(level: number): boolean { return level >= Atomics.load(this.state, S_LEVEL); }

  protected emit(level: number, msg: string, fields: Fields | undefined): void {
    let text: string;
    try {
      text = JSON.stringify([level, Date.now(), msg, fields ?? null]);
    } catch {
      text = JSON.stringify([level, Date.now(), msg, { fieldsError: 'unserialisable fields' }]);
    }
    const len = Buffer.byteLength(text);
    // reserve() (not push(): its overflow queue would be unbounded) and a commit per record:
    // records are few, and the main thread should see each one on its next drain.
    const at = this.ring.reserve(len);
    if (at < 0) { Atomics.add(this.state, this.dropSlot, 1); return; }
    this.ring.bytes.write(text, at, len, 'utf8');
    this.ring.commit();
  }
}
