// Only with --test-hooks (tests start brokers with it): a PUBLISH to a hook topic makes the
// worker do what the hook names instead of routing the message.
import type { Connection } from './net/connection';
import { STALE_AFTER_MS } from '../src/shared/heartbeats';
import { encodePublish, NO_EXTRAS } from './protocol/publish-codec';

const CRASH_WORKER = '$fleetmq/test/crash-worker';
/** Blocks the worker's event loop long enough for its heartbeat to go stale (/livez, src/http/health.ts). */
const STALL_WORKER = '$fleetmq/test/stall-worker';
const STALL_MS = STALE_AFTER_MS + 3000;
/**
 * Answers the publishing connection with a QoS 0 PUBLISH on the same topic: JSON
 * {worker, deadlines, timeouts}: the session deadlines this worker's heap holds and the Node
 * timer handles alive in this thread (process.getActiveResourcesInfo()), so a test can see that
 * offline sessions hold no timer each.
 */
const TIMERS = '$fleetmq/test/timers';

/** What a hook may read of the worker. */
export interface HookView { readonly deadlines: { readonly size: number } }

/** True when `topic` was a hook (and was acted on). */
export function testHook(index: number, c: Connection, topic: Buffer, view: HookView): boolean {
  if (topic.length === CRASH_WORKER.length && topic.toString() === CRASH_WORKER) {
    setImmediate(() => { throw new Error(`test hook: worker ${index} crashes on purpose`); });
    return true;
  }
  if (topic.length === STALL_WORKER.length && topic.toString() === STALL_WORKER) {
    // Atomics.wait blocks this thread without spinning a core; nothing ever notifies it.
    setImmediate(() => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, STALL_MS));
    return true;
  }
  if (topic.length === TIMERS.length && topic.toString() === TIMERS) {
    const timeouts = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const body = Buffer.from(JSON.stringify({ worker: index, deadlines: view.deadlines.size, timeouts }));
    c.write(encodePublish(topic, body, null, 0, false, false, 0, c.v5, NO_EXTRAS));
    return true;
  }
  return false;
}
