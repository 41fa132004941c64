// Only with --test-hooks (tests start brokers with it): a PUBLISH to a hook topic makes the
// worker do what the hook names instead of routing the message.
import type { Connection } from './net/connection';
import { STALE_AFTER_MS } from '../src/shared/heartbeats';

const CRASH_WORKER = '$fleetmq/test/crash-worker';
/** Blocks the worker's event loop long enough for its heartbeat to go stale (/livez, src/http/health.ts). */
const STALL_WORKER = '$fleetmq/test/stall-worker';
const STALL_MS = STALE_AFTER_MS + 3000;

/** True when `topic` was a hook (and was acted on). */
export function testHook(index: number, _c: Connection, topic: Buffer): boolean {
  if (topic.length === CRASH_WORKER.length && topic.toString() === CRASH_WORKER) {
    setImmediate(() => { throw new Error(`test hook: worker ${index} crashes on purpose`); });
    return true;
  }
  if (topic.length === STALL_WORKER.length && topic.toString() === STALL_WORKER) {
    // Atomics.wait blocks this thread without spinning a core; nothing ever notifies it.
    setImmediate(() => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, STALL_MS));
    return true;
  }
  return false;
}
