// The process's one log writer, on the main thread: pino, writing JSON lines (or, with
// --log-format pretty, one compact human line per record) to stdout through one bounded
// asynchronous buffer (sonic-boom's maxLength). Records from the workers and the coordinator
// arrive through their log rings (log-hub.ts) and are written here, whole lines from one
// writer, so lines never interleave. When stdout does not keep up, the buffer fills and the
// records that do not fit are dropped and counted (writerDrops(), on /metrics), and no thread
// ever waits on stdout, this one included.
//
// setLogLevel() changes the level of every thread of every broker in this process at once.
import pino from 'pino';
import type { LogLevel } from '../config';
import { LEVELS, levelName } from './levels';
import { S_LEVEL } from './log-state';
import { BaseLogger, type Fields, type Logger } from './thread-log';
import { prettyLine } from './pretty';
import { installLogger } from './thread';

/**
 * stdout bytes waiting to be written at most; past it, records are dropped and counted. Tests
 * (FLEETMQ_TEST_HOOKS=1) may make it small to see the drops without writing megabytes.
 */
const WRITER_BUFFER_BYTES = (process.env.FLEETMQ_TEST_HOOKS === '1' && Number(process.env.FLEETMQ_TEST_LOG_BUFFER_BYTES)) || 4 * 1024 * 1024;

type Dest = ReturnType<typeof pino.destination>;

let dest: Dest | null = null;
let root: pino.Logger | null = null;
/** Writes the lines that say where the broker listens, whatever the level (announce()). */
let announcer: pino.Logger | null = null;
let format: 'json' | 'pretty' = 'json';
let level: LogLevel = 'info';
let writerDropped = 0;
/** Every running broker's shared level word (log-state.ts). */
const states = new Set<Int32Array>();
const children = new Map<string, pino.Logger>();

function destination(): Dest {
  if (dest) return dest;
  dest = pino.destination({ dest: 1, sync: false, minLength: 0, maxLength: WRITER_BUFFER_BYTES });
  dest.on('drop', () => { writerDropped++; });
  // stdout closed under us (EPIPE): nothing can be written any more; count instead of crashing.
  dest.on('error', () => { writerDropped++; });
  return dest;
}

function build(): pino.Logger {
  const d = destination();
  const stream = format === 'pretty' ? { write: (s: string) => d.write(prettyLine(s)) } : d;
  children.clear();
  announcer = pino({
    level: 'info',
    messageKey: 'msg',
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  }, stream).child({ thread: 'main' });
  return pino({
    level,
    messageKey: 'msg',
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  }, stream);
}

/** Sets the format and level (a second broker in one process: the last one's settings win). */
export function configureLogging(opts: { logLevel: LogLevel; logFormat: 'json' | 'pretty' }): void {
  level = opts.logLevel;
  if (root === null || opts.logFormat !== format) { format = opts.logFormat; root = build(); }
  setLogLevel(level);
}

function rootLogger(): pino.Logger {
  if (root === null) root = build();
  return root;
}

function child(thread: string): pino.Logger {
  let c = children.get(thread);
  if (c === undefined) { c = rootLogger().child({ thread }); children.set(thread, c); }
  return c;
}

/**
 * The level of every thread, now: the main thread's logger and the shared word each worker and
 * the coordinator read before each record. For the admin API ("change the log level").
 */
export function setLogLevel(next: LogLevel): void {
  if (!Object.prototype.hasOwnProperty.call(LEVELS, next)) throw new Error(`unknown log level ${String(next)}`);
  level = next;
  rootLogger().level = next;
  for (const c of children.values()) c.level = next;
  for (const s of states) Atomics.store(s, S_LEVEL, LEVELS[next]);
}

export function getLogLevel(): LogLevel { return level; }

/** A broker's shared level word follows setLogLevel from now on (until unregistered). */
export function registerLogState(state: Int32Array): () => void {
  Atomics.store(state, S_LEVEL, LEVELS[level]);
  states.add(state);
  return () => { states.delete(state); };
}

/**
 * The startup lines that say where the broker listens (MQTT, the other transports, HTTP): info
 * records written whatever --log-level says, `silent` included, because launchers and
 * supervisors wait for them to learn the ports; a handful per start, none after.
 */
export function announce(msg: string, fields: Fields = {}): void {
  rootLogger();
  announcer!.info(fields, msg);
}

/** Records the writer dropped because stdout did not keep up (or was closed). */
export function writerDrops(): number { return writerDropped; }

/** What a batch of records may gather before it is written (sonic-boom writes in chunks of 16 KiB). */
const BATCH_BYTES = 64 * 1024;

/**
 * Runs `fn`, which writes many records, and writes them to stdout together at its end (or each
 * BATCH_BYTES): the log hub's drain of the threads' rings. One write per record (sonic-boom
 * with minLength 0 starts one as soon as it is idle) was a syscall and a thread-pool wake-up
 * per connect and per disconnect under a connect storm.
 */
export function writeBatch(fn: () => void): void {
  const d = dest as unknown as { minLength: number; _len: number; _writing: boolean; write(s: string): boolean } | null;
  if (d === null) { fn(); return; }
  d.minLength = BATCH_BYTES;
  try {
    fn();
  } finally {
    d.minLength = 0;
    // Starts the write of what gathered: sonic-boom writes on write() when idle and _len >= minLength.
    if (d._len > 0 && !d._writing) d.write('');
  }
}

/** Writes one record from another thread, under that thread's name. */
export function writeRecord(thread: string, lvl: number, msg: string, fields: Fields | null): void {
  const c = child(thread);
  const name = levelName(lvl);
  if (name === 'silent' || !c.isLevelEnabled(name)) return;
  c[name](fields ?? {}, msg);
}

class MainLog extends BaseLogger {
  enabled(lvl: number): boolean { return lvl >= LEVELS[level]; }
  protected emit(lvl: number, msg: string, fields: Fields | undefined): void {
    writeRecord('main', lvl, msg, fields ?? null);
  }
}

/** The main thread's logger. */
export const log: Logger = new MainLog();

/**
 * Resolves once what is buffered has reached stdout (at most `ms`): before the process exits.
 * sonic-boom's flush(cb) calls back at once when it does not batch (minLength 0, ours), so this
 * waits for its in-flight write and buffer to empty (its `_writing` / `_len` fields), then writes
 * any rest synchronously.
 */
export function flushLogs(ms = 2000): Promise<void> {
  const d = dest as unknown as { _writing?: boolean; _len?: number } | null;
  if (!d) return Promise.resolve();
  const deadline = Date.now() + ms;
  return new Promise((resolve) => {
    const check = (): void => {
      if ((d._writing !== true && (d._len ?? 0) === 0) || Date.now() > deadline) { flushLogsSync(); resolve(); return; }
      setTimeout(check, 5);
    };
    check();
  });
}

/** Writes what is buffered now, blocking: only right before the process exits without teardown. */
export function flushLogsSync(): void {
  try { dest?.flushSync(); } catch { /* stdout gone or busy: nothing more can be done */ }
}

// The main thread is a thread too: parts shared by all threads log through tlog().
installLogger(log);
