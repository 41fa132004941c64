// $SYS/broker/... (one worker publishes for the whole process, reading every worker's
// counters from shared memory). Retained, so a new subscriber sees the latest values at once.
import { Message, NO_ORIGIN } from '../protocol/message';
import { COUNTER_NAMES, COUNTERS_PER_WORKER, sumCounter } from '../../src/shared/counters';

const VERSION: string = require('../../../package.json').version;

export interface SysDeps {
  /** Seconds between updates (0: none). */
  readonly interval: number;
  readonly counters: SharedArrayBuffer;
  readonly startedAt: number;
  readonly router: { publish(msg: Message): void; flushBatch(): void };
  ringDirty(): void;
}

export function startSysTopics(d: SysDeps): void {
  const seconds = d.interval;
  if (seconds === 0) return;
  const all = new Float64Array(d.counters);
  const workers = all.length / COUNTERS_PER_WORKER;
  const publish = (topic: string, value: string) => {
    d.router.publish(new Message(Buffer.from(`$SYS/broker/${topic}`), Buffer.from(value), 0, true, null, 0, NO_ORIGIN));
  };
  const tick = () => {
    publish('version', `fleetmq ${VERSION}`);
    publish('uptime', `${Math.floor((Date.now() - d.startedAt) / 1000)} seconds`);
    publish('workers', String(workers));
    for (const [c, name] of Object.entries(COUNTER_NAMES)) publish(name, String(sumCounter(all, workers, Number(c))));
    d.router.flushBatch();
    d.ringDirty();
  };
  tick();
  setInterval(tick, seconds * 1000).unref();
}
