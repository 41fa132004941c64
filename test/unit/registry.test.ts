// The coordinator's client id registry alone: claims of one id are serialised, and none is
// left waiting once the takeover in front of it has completed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { MessagePort } from 'node:worker_threads';
import { Registry } from '../../src/coordinator/registry';
import type { FromCoordinator } from '../../src/shared/messages';

/** Answers go out at once (the broker sends a turn's answers at its end). */
const now = (fn: () => void): void => fn();

/** One inbox per worker: what the registry posted to it. */
function workers(n: number): { ports: MessagePort[]; inbox: FromCoordinator[][] } {
  const inbox: FromCoordinator[][] = Array.from({ length: n }, () => []);
  const ports = inbox.map((box) => ({ postMessage: (m: FromCoordinator) => box.push(m) }) as unknown as MessagePort);
  return { ports, inbox };
}

interface Answer { t: string; req: number; local?: boolean; redirect?: number }

function take(box: FromCoordinator[], t: string): Answer {
  const i = box.findIndex((m) => m.t === t);
  assert.ok(i >= 0, `expected a '${t}' in ${JSON.stringify(box)}`);
  return box.splice(i, 1)[0] as unknown as Answer;
}

test('claims queued behind a takeover all get an answer, also behind one granted at once', () => {
  const { ports, inbox } = workers(2);
  const r = new Registry(ports, now);
  r.claim(0, 1, 'x', true);
  assert.equal(take(inbox[0], 'granted').req, 1);
  // Worker 1 takes over with a clean start: worker 0 must release first.
  r.claim(1, 2, 'x', true);
  const rel = take(inbox[0], 'release');
  // Meanwhile two more clean CONNECTs of the same id: one on worker 1, one on worker 0.
  r.claim(1, 3, 'x', true);
  r.claim(0, 4, 'x', true);
  assert.equal(inbox[0].length + inbox[1].length, 0, 'they wait for the takeover in progress');
  r.released(0, rel.req);
  assert.equal(take(inbox[1], 'granted').req, 2);
  // Claim 3 is worker 1's own: granted at once. Claim 4 must not be left waiting behind it.
  const g3 = take(inbox[1], 'granted');
  assert.equal(g3.req, 3);
  assert.equal(g3.local, true);
  const rel4 = take(inbox[1], 'release');
  r.released(1, rel4.req);
  assert.equal(take(inbox[0], 'granted').req, 4);
  assert.deepEqual(inbox, [[], []]);
});

test('a continuing session redirected to its owner does not hold the claims behind it', () => {
  const { ports, inbox } = workers(3);
  const r = new Registry(ports, now);
  r.claim(0, 1, 'y', false);
  take(inbox[0], 'granted');
  r.claim(1, 2, 'y', true);
  const rel = take(inbox[0], 'release');
  r.claim(2, 3, 'y', false); // continues: redirected to the owner
  r.claim(2, 4, 'y', true); // clean: a takeover of its own
  r.released(0, rel.req);
  assert.equal(take(inbox[1], 'granted').req, 2);
  const g3 = take(inbox[2], 'granted');
  assert.equal(g3.req, 3);
  assert.equal(g3.redirect, 1);
  const rel4 = take(inbox[1], 'release');
  r.released(1, rel4.req);
  assert.equal(take(inbox[2], 'granted').req, 4);
});
