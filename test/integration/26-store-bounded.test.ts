// 26 disk stays bounded under steady load (compaction). A persistent
// subscriber goes offline, 4000 QoS 1 messages of 1 KiB queue for it, it comes back and takes
// them all; sixteen rounds write ~64 MiB of message bodies through a store with 1 MiB memtables.
// What the rounds deleted must not stay on disk: after every round the data dir is well below
// what went through it (measured: 4.3-4.5 MiB after every round; with deletes dropped it grew
// past 90 MiB). (The bound is loose on purpose: it checks that space is reclaimed at all, not
// how RocksDB schedules its compactions.)
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as mqtt from 'mqtt';
import { uid, utopic } from '../helpers/ids';
import { subscribeOk, end } from '../helpers/clients';
import { withDeployment, persistentOpts } from '../helpers/persist';

const ROUNDS = 16;
const PER_ROUND = 4000;
/** Random, so RocksDB's block compression cannot make the load small. */
const PAYLOAD_BYTES = 1024;
const BOUND = 12 * 2 ** 20;

function dirBytes(dir: string): number {
  let n = 0;
  for (const f of fs.readdirSync(dir)) {
    // A compaction may delete a table file between the listing and its stat.
    try { n += fs.statSync(path.join(dir, f)).size; } catch (err) { if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err; }
  }
  return n;
}

/** Publishes `n` QoS 1 messages, up to 256 unacknowledged; resolves when every PUBACK is in. */
function publishAll(c: mqtt.MqttClient, topic: string, n: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let sent = 0;
    let acked = 0;
    const pump = () => {
      while (sent < n && sent - acked < 256) {
        sent++;
        c.publish(topic, crypto.randomBytes(PAYLOAD_BYTES), { qos: 1 }, (err) => {
          if (err) { reject(err); return; }
          if (++acked === n) resolve(); else pump();
        });
      }
    };
    pump();
  });
}

describe('26 store size under steady load [workers=1]', () => {
  it(`${ROUNDS} rounds of ${PER_ROUND} queued-then-delivered 1 KiB messages leave the data dir under ${BOUND >> 20} MiB`, { timeout: 300_000 }, async () => {
    await withDeployment(1, { args: ['--store-memtable-mb', '1'] }, async (d, c) => {
      await d.start();
      const topic = `${utopic('bounded')}/q`;
      const id = uid('bounded');
      const first = await c.mqtt(d.port, persistentOpts(4, id, false));
      await subscribeOk(first.client, { [topic]: { qos: 1 } });
      await end(first.client);
      const pub = await c.mqtt(d.port, { protocolVersion: 4, clientId: uid('bounded-pub') });
      const sizes: number[] = [];
      for (let r = 0; r < ROUNDS; r++) {
        await publishAll(pub.client, topic, PER_ROUND);
        const sub = await c.mqtt(d.port, persistentOpts(4, id, true));
        await sub.inbox.waitFor(PER_ROUND, topic, 60_000);
        await end(sub.client);
        sizes.push(dirBytes(d.dir));
      }
      const written = ROUNDS * PER_ROUND * PAYLOAD_BYTES;
      const mib = (n: number) => (n / 2 ** 20).toFixed(1);
      assert.ok(written >= 3 * BOUND, 'the load must be large next to the bound, or the check means nothing');
      assert.ok(Math.max(...sizes) < BOUND,
        `data dir after each round (${mib(written)} MiB of messages in all): ${sizes.map(mib).join(', ')} MiB; must stay under ${mib(BOUND)} MiB`);
    });
  });
});
