// Only with --test-hooks (tests start brokers with it): a PUBLISH to a hook topic makes the
// worker do what the hook names instead of routing the message.
import type { Connection } from './net/connection';

const CRASH_WORKER = '$fleetmq/test/crash-worker';

/** True when `topic` was a hook (and was acted on). */
export function testHook(index: number, _c: Connection, topic: Buffer): boolean {
  if (topic.length !== CRASH_WORKER.length || topic.toString() !== CRASH_WORKER) return false;
  setImmediate(() => { throw new Error(`test hook: worker ${index} crashes on purpose`); });
  return true;
}
