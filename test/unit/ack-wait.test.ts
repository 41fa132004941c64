// A publisher's PUBACK under write-behind across workers (workers/README.md, "Persistence and write-behind"): it waits for every
// part (this worker's held request, one per other holding worker) and goes only if all are
// durable; parts from a worker that died count as failed, so that publisher resends.
import { describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { AckWait } from '../../workers/persist/ack-wait';
import { RemoteWaits, MAX_REMOTE_WAITS } from '../../workers/persist/remote-waits';

function wait(parts: number): { a: AckWait; calls: number[] } {
  const calls: number[] = [];
  const a = new AckWait(parts);
  a.notify = (x) => calls.push(x.settled);
  return { a, calls };
}

describe('AckWait', () => {
  test('settles once, after its last part, when every part is durable', () => {
    const { a, calls } = wait(1);
    a.expect(2);
    a.part(true);
    a.part(true);
    assert.deepEqual(calls, [], 'two of three parts');
    a.part(true);
    assert.deepEqual(calls, [1]);
    a.part(true);
    assert.deepEqual(calls, [1], 'notified once');
  });

  test('one failed part settles it as failed at once; later parts change nothing', () => {
    const { a, calls } = wait(3);
    a.part(true);
    a.part(false);
    assert.deepEqual(calls, [2]);
    a.part(true);
    assert.equal(a.settled, 2);
    assert.deepEqual(calls, [2]);
  });
});

describe('RemoteWaits', () => {
  test('a settle names its worker and message; unknown ones (a previous life of that worker) are ignored', () => {
    const r = new RemoteWaits(3);
    const { a, calls } = wait(0);
    a.expect(2);
    r.add(1, 100, a);
    r.add(2, 100, a);
    r.settle(1, 999, true);
    r.settle(0, 100, true);
    assert.deepEqual(calls, []);
    r.settle(1, 100, true);
    r.settle(1, 100, true); // twice: counted once
    assert.deepEqual(calls, []);
    r.settle(2, 100, true);
    assert.deepEqual(calls, [1]);
  });

  test('a worker that died fails what it held, and only that', () => {
    const r = new RemoteWaits(3);
    const x = wait(1), y = wait(1);
    r.add(1, 7, x.a);
    r.add(2, 8, y.a);
    r.failWorker(1);
    assert.deepEqual(x.calls, [2]);
    assert.deepEqual(y.calls, []);
    r.settle(2, 8, true);
    assert.deepEqual(y.calls, [1]);
    r.settle(1, 7, true);
    assert.deepEqual(x.calls, [2], 'a late settle from the dead worker changes nothing');
  });

  test('is bounded: full at MAX_REMOTE_WAITS, room again as parts settle', () => {
    const r = new RemoteWaits(2);
    for (let i = 0; i < MAX_REMOTE_WAITS; i++) r.add(1, i + 1, new AckWait(1));
    assert.equal(r.full, true);
    r.settle(1, 1, true);
    assert.equal(r.full, false);
    r.failWorker(1);
    assert.equal(r.full, false);
  });
});
