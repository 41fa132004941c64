// $SYS/broker/... (one worker publishes for the whole process, reading every worker's
// counters from shared memory). Retained, so a new subscriber sees the latest values at once.
import type { Hub } from '../hub';
import { Message, NO_ORIGIN } from '../protocol/message';
import { COUNTER_NAMES, COUNTERS_PER_WORKER, sumCounter } from '../../src/shared/counters';

const VERSION: string = require('../../../package.json').version;

export function startSysTopics(hub: Hub): void {
  const seconds = hub.config.sysInterval;
  if (seconds === 0) return;
  const all = new Float64Array(hub.wiring.counters);
  const workers = all.length / COUNTERS_PER_WORKER;
  const publish = (topic: string, value: string) => {
    hub.router.publish(new Message(Buffer.from(`$SYS/broker/${topic}`), Buffer.from(value), 0, true, null, 0, NO_ORIGIN));
  };
  const tick = () => {
    publish('version', `fleetmq ${VERSION}`);
    publish('uptime', `${Math.floor((Date.now() - hub.wiring.startedAt) / 1000)} seconds`);
    publish('workers', String(workers));
    for (const [c, name] of Object.entries(COUNTER_NAMES)) publish(name, String(sumCounter(all, workers, Number(c))));
    hub.router.flushBatch();
    hub.markRingDirty();
  };
  tick();
  setInterval(tick, seconds * 1000).unref();
}
