// $SYS/broker/... (one worker publishes for the whole process, reading every worker's
// counters from shared memory). Retained, so a new subscriber sees the latest values at once.
// The cluster's topics: `cluster/members` (comma-separated node ids) and `cluster/node`
// (`<id> <incarnation>`) when the coordinator tells this worker the view changed, published at
// once; `cluster/fencings` from shared memory (src/shared/cluster-state.ts) with the counters.
import { Message, NO_ORIGIN } from '../protocol/message';
import { COUNTER_NAMES, COUNTERS_PER_WORKER, sumCounter } from '../../src/shared/counters';
import type { ClusterState } from '../../src/shared/cluster-state';

const VERSION: string = require('../../../package.json').version;

export interface SysDeps {
  /** Seconds between updates (0: none). */
  readonly interval: number;
  readonly counters: SharedArrayBuffer;
  readonly clusterState: ClusterState;
  readonly startedAt: number;
  readonly router: { publish(msg: Message): void; flushBatch(): void };
  ringDirty(): void;
}

export interface ClusterInfo { node: string; incarnation: string; members: string[] }

export interface SysTopics {
  /** The cluster view changed (or this worker just started): publish it now. */
  cluster(info: ClusterInfo): void;
}

export function startSysTopics(d: SysDeps): SysTopics {
  const seconds = d.interval;
  if (seconds === 0) return { cluster: () => undefined };
  const all = new Float64Array(d.counters);
  const workers = all.length / COUNTERS_PER_WORKER;
  let member = false;
  const publish = (topic: string, value: string) => {
    d.router.publish(new Message(Buffer.from(`$SYS/broker/${topic}`), Buffer.from(value), 0, true, null, 0, NO_ORIGIN));
  };
  const done = () => { d.router.flushBatch(); d.ringDirty(); };
  const tick = () => {
    publish('version', `fleetmq ${VERSION}`);
    publish('uptime', `${Math.floor((Date.now() - d.startedAt) / 1000)} seconds`);
    publish('workers', String(workers));
    for (const [c, name] of Object.entries(COUNTER_NAMES)) publish(name, String(sumCounter(all, workers, Number(c))));
    if (member) publish('cluster/fencings', String(d.clusterState.fencings));
    done();
  };
  tick();
  setInterval(tick, seconds * 1000).unref();
  return {
    cluster(info) {
      member = true;
      // Never empty (a retained empty payload would delete the topic [MQTT-3.3.1-10]): a member's
      // view always holds itself.
      publish('cluster/members', info.members.join(',') || info.node);
      publish('cluster/node', `${info.node} ${info.incarnation}`);
      publish('cluster/fencings', String(d.clusterState.fencings));
      done();
    },
  };
}
