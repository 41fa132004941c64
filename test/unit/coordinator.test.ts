// The coordinator as a module, without its thread (src/coordinator/coordinator.ts): workers are
// real MessageChannel ports in this thread, the trie is the real native one, the store is the
// memory one (--durability none).
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { once } from 'node:events';
import { Coordinator, type ToMain } from '../../src/coordinator/coordinator';
import { resolveConfig, parseArgs } from '../../src/config';
import { createRingBuffer, createBell } from '../../src/shared/ring';
import { createStoreIds } from '../../src/shared/store-ids';
import { createClusterState } from '../../src/shared/cluster-state';
import { topicIndex, subscriberId } from '../../src/shared/topic-index';
import type { FromCoordinator, ToCoordinator } from '../../src/shared/messages';

/** One worker's end of its port, with the coordinator's messages queued in order. */
class FakeWorker {
  readonly got: FromCoordinator[] = [];
  private waiters: Array<() => void> = [];
  constructor(readonly port: MessagePort) {
    port.on('message', (m: FromCoordinator) => { this.got.push(m); for (const w of this.waiters.splice(0)) w(); });
  }
  send(m: ToCoordinator): void { this.port.postMessage(m); }
  /** The next message of type `t` (taken from the queue). */
  async next<T extends FromCoordinator['t']>(t: T): Promise<Extract<FromCoordinator, { t: T }>> {
    for (;;) {
      const i = this.got.findIndex((m) => m.t === t);
      if (i >= 0) return this.got.splice(i, 1)[0] as Extract<FromCoordinator, { t: T }>;
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no '${t}' from the coordinator; got ${JSON.stringify(this.got.map((m) => m.t))}`)), 5000);
        this.waiters.push(() => { clearTimeout(timer); resolve(); });
      });
    }
  }
  close(): void { this.port.close(); }
}

async function setup(workers: number): Promise<{ c: Coordinator; ws: FakeWorker[]; main: ToMain[]; trieId: number }> {
  const config = resolveConfig(parseArgs(['--durability', 'none', '--workers', String(workers)]));
  const trieId = topicIndex.create();
  const main: ToMain[] = [];
  const c = new Coordinator({ workers, config, trieId, storeIds: createStoreIds(), coordBell: createBell(), clusterState: createClusterState() }, (m) => main.push(m));
  await c.start();
  const ws: FakeWorker[] = [];
  for (let i = 0; i < workers; i++) {
    const { port1, port2 } = new MessageChannel();
    c.attach(i, port1, createRingBuffer(64 * 1024));
    const w = new FakeWorker(port2);
    await w.next('adopt-done');
    ws.push(w);
  }
  return { c, ws, main, trieId };
}

const wire = (topic: string, payload: string) => ({ topic, payload: new Uint8Array(Buffer.from(payload)), qos: 1, retain: true, props: null, expiryAt: 0 });

describe('coordinator without a thread', () => {
  test('claims: a new id is granted; a clean start elsewhere releases the old owner first', async () => {
    const { ws } = await setup(2);
    ws[0].send({ t: 'claim', req: 1, clientId: 'a', clean: false });
    assert.deepEqual(await ws[0].next('granted'), { t: 'granted', req: 1, existed: false });
    ws[0].send({ t: 'claim', req: 2, clientId: 'a', clean: false });
    assert.equal((await ws[0].next('granted')).local, true, 'the owner claiming again takes over locally');
    ws[1].send({ t: 'claim', req: 3, clientId: 'a', clean: false });
    assert.equal((await ws[1].next('granted')).redirect, 0, 'a continuing session: the connection moves to its owner');
    ws[1].send({ t: 'claim', req: 4, clientId: 'a', clean: true });
    const release = await ws[0].next('release');
    assert.equal(release.clientId, 'a');
    assert.equal(ws[1].got.some((m) => m.t === 'granted'), false, 'not granted before the old owner released');
    ws[0].send({ t: 'released', req: release.req });
    assert.deepEqual(await ws[1].next('granted'), { t: 'granted', req: 4, existed: true });
    for (const w of ws) w.close();
  });

  test('retained messages page out through a cursor the asking worker owns', async () => {
    const { ws } = await setup(1);
    for (let i = 0; i < 600; i++) ws[0].send({ t: 'retain', msg: wire(`r/${i}`, `v${i}`) });
    ws[0].send({ t: 'retain', msg: wire('other/x', 'x') });
    ws[0].send({ t: 'retained?', req: 1, filter: 'r/#', cursor: 0 });
    let page = await ws[0].next('retained');
    const topics = page.msgs.map((m) => m.topic);
    for (let req = 2; page.cursor !== 0; req++) {
      ws[0].send({ t: 'retained?', req, filter: 'r/#', cursor: page.cursor });
      page = await ws[0].next('retained');
      topics.push(...page.msgs.map((m) => m.topic));
    }
    assert.equal(topics.length, 600);
    assert.equal(new Set(topics).size, 600);
    assert.ok(topics.every((t) => t.startsWith('r/')));
    ws[0].close();
  });

  test('a dead worker\'s subscriptions leave the trie before its replacement reuses its ids', async () => {
    const { c, ws, main, trieId } = await setup(2);
    const sub = subscriberId(1, 7);
    ws[1].send({ t: 'sub', sub, filter: 'd/+' });
    ws[1].send({ t: 'sub', sub, filter: 'd/#' });
    topicIndex.subscribe(trieId, 'd/+', sub, 1, 0);
    topicIndex.subscribe(trieId, 'd/#', sub, 1, 0);
    ws[1].send({ t: 'unsub', sub, filter: 'd/#' });
    topicIndex.unsubscribe(trieId, 'd/#', sub);
    c.workerDied(1); // takes what worker 1 posted first
    assert.deepEqual(main.at(-1), { t: 'purged', index: 1, removed: 1 });
    assert.equal(topicIndex.unsubscribe(trieId, 'd/+', sub), false, 'nothing of worker 1 is left in the trie');
    for (const w of ws) w.close();
    await once(ws[0].port, 'close');
  });
});
