// The main thread's end of the other threads' logs: one log ring per worker and one for the
// coordinator (SPSC rings in SharedArrayBuffers, src/shared/ring.ts, the house style for
// thread-to-thread data), drained every DRAIN_MS into the one writer (logger.ts).
//
// Why rings and not postMessage: a record costs the sending thread one JSON.stringify and a
// copy into shared memory, never a structured clone or a message event on the main thread;
// the bound is the ring's size, fixed, and a full ring drops the record and counts it
// (log-state.ts) where a MessagePort would queue without limit. Why a timer and not a doorbell:
// records are few (levels and rate limits keep them so) and a 25 ms delay costs nobody.
import { createRingBuffer, createBell, RingConsumer } from '../shared/ring';
import type { LogLevel } from '../config';
import { LEVELS } from './levels';
import { createLogState, ringDrops, S_WRITER_DROPPED } from './log-state';
import { registerLogState, writeRecord, writerDrops, writeBatch, log } from './logger';
import type { Fields, LogWiring } from './thread-log';

/** Per thread: a 256 KiB ring holds ~1,000 records of a few hundred bytes. */
const RING_BYTES = 256 * 1024;
const DRAIN_MS = 25;
/** Records written per drain and thread at most, so one noisy thread cannot hold the loop. */
const DRAIN_MAX = 2000;

interface ThreadRing { name: string; consumer: RingConsumer; ring: SharedArrayBuffer }

export class LogHub {
  readonly state: SharedArrayBuffer;
  private readonly view: Int32Array;
  private readonly threads: (ThreadRing | null)[];
  private readonly bell = createBell();
  private timer: NodeJS.Timeout | null = null;
  private readonly unregister: () => void;

  constructor(private readonly workers: number, level: LogLevel) {
    this.state = createLogState(workers + 1, LEVELS[level]);
    this.view = new Int32Array(this.state);
    this.threads = new Array(workers + 1).fill(null);
    this.unregister = registerLogState(this.view);
    this.timer = setInterval(() => this.drain(), DRAIN_MS).unref();
  }

  /** The wiring of worker `index` (or, with index = workers, the coordinator): a fresh ring. */
  wiring(index: number): LogWiring {
    // A replacement worker gets a new ring; what its predecessor left is written first.
    const old = this.threads[index];
    if (old) this.drainOne(old, Infinity);
    const ring = createRingBuffer(RING_BYTES);
    this.threads[index] = { name: index === this.workers ? 'coordinator' : `worker ${index}`, consumer: new RingConsumer(ring), ring };
    return { ring, bell: this.bell, state: this.state, slot: index };
  }

  /** Writes what a thread that just ended left in its ring (its last words). */
  drainThread(index: number): void {
    const t = this.threads[index];
    if (t) this.drainOne(t, Infinity);
  }

  drain(): void {
    writeBatch(() => { for (const t of this.threads) if (t) this.drainOne(t, DRAIN_MAX); });
    Atomics.store(this.view, S_WRITER_DROPPED, Math.min(writerDrops(), 0x7fffffff));
  }

  private drainOne(t: ThreadRing, max: number): void {
    t.consumer.drain((data, _view, off, len) => {
      let rec: [number, number, string, Fields | null];
      try {
        rec = JSON.parse(data.toString('utf8', off, off + len)) as typeof rec;
      } catch {
        log.error('unreadable log record from another thread', { thread: t.name, bytes: len });
        return;
      }
      writeRecord(t.name, rec[0], rec[2], rec[3]);
    }, max);
  }

  /** Records dropped: in the threads' full rings, and by the writer when stdout lagged. */
  drops(): { ring: number; writer: number } {
    return { ring: ringDrops(this.view), writer: writerDrops() };
  }

  /** After every thread has stopped: the last records, then nothing more from this broker. */
  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    for (const t of this.threads) if (t) this.drainOne(t, Infinity);
    this.unregister();
  }
}
