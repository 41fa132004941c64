// 0b $SYS topics: $SYS/broker/... basics (version, uptime, clients connected, messages
// received / sent) are published; wildcards at the first level never match $ topics.
// The broker runs with --sys-interval 1; the test still allows 30 s for each topic.
import { it } from 'node:test';
import * as assert from 'node:assert/strict';
import { waitUntil } from '../helpers/wait';
import { utopic } from '../helpers/ids';
import { clientPool, subscribe, publish, Inbox } from '../helpers/clients';
import { eachWorkerCount } from '../helpers/suite';

const SYS_MS = 30000;

/** The latest payload on a $SYS topic ending with `suffix` (e.g. 'clients/connected'). */
function latest(inbox: Inbox, re: RegExp): string | undefined {
  const ms = inbox.msgs.filter((m) => re.test(m.topic));
  return ms.length ? ms[ms.length - 1].payload.toString() : undefined;
}

eachWorkerCount('0b $SYS topics', (broker) => {
  const pool = clientPool();

  it('$SYS/broker/version, uptime, clients connected, messages received and sent are published', { timeout: SYS_MS * 2 }, async () => {
    const s = await pool.connect(broker(), { protocolVersion: 4 });
    await subscribe(s.client, '$SYS/#');
    // Traffic so the counters have something to count.
    const pub = await pool.connect(broker(), { protocolVersion: 4 });
    for (let i = 0; i < 5; i++) await publish(pub.client, utopic('sys'), 'x', { qos: 1 });
    const wanted: Array<[string, RegExp]> = [
      ['version', /^\$SYS\/broker\/version$/],
      ['uptime', /^\$SYS\/broker\/uptime$/],
      ['clients connected', /^\$SYS\/broker\/clients\/connected$/],
      ['messages received', /^\$SYS\/broker\/messages\/received$/],
      ['messages sent', /^\$SYS\/broker\/messages\/sent$/],
    ];
    await waitUntil(() => wanted.every(([, re]) => latest(s.inbox, re) !== undefined),
      `all of ${wanted.map(([n]) => n).join(', ')} (missing: ${wanted.filter(([, re]) => latest(s.inbox, re) === undefined).map(([n]) => n).join(', ')}; topics seen: ${[...new Set(s.inbox.msgs.map((m) => m.topic))].slice(0, 30).join(' ')})`, SYS_MS);
    assert.ok(latest(s.inbox, wanted[0][1])!.length > 0, 'version is non-empty');
    assert.match(latest(s.inbox, wanted[1][1])!, /\d/, 'uptime contains a number');
    // Counters are numbers; clients connected counts at least the two clients of this test.
    await waitUntil(() => Number.parseInt(latest(s.inbox, wanted[2][1]) ?? '0', 10) >= 2, 'clients connected >= 2', SYS_MS);
    await waitUntil(() => Number.parseInt(latest(s.inbox, wanted[3][1]) ?? '0', 10) >= 5, 'messages received >= 5', SYS_MS);
    assert.ok(Number.isFinite(Number.parseInt(latest(s.inbox, wanted[4][1])!, 10)), 'messages sent is a number');
  });

  it('# and +/... do not match topics starting with $ [MQTT-4.7.2-1]', { timeout: SYS_MS * 2 }, async () => {
    const sys = await pool.connect(broker(), { protocolVersion: 5 });
    await subscribe(sys.client, '$SYS/#');
    const all = await pool.connect(broker(), { protocolVersion: 5 });
    await subscribe(all.client, ['#', '+/broker/#', '+/+/+']);
    await sys.inbox.waitFor(1, undefined, SYS_MS);
    // A message published after $SYS traffic was observed; by then a leak would have shown.
    await waitUntil(() => sys.inbox.msgs.length >= 2, 'a second $SYS message', SYS_MS);
    const t = utopic('sysleak');
    await publish(sys.client, t, 'sentinel', { qos: 1 });
    await all.inbox.waitForPayload('sentinel');
    const leaked = all.inbox.msgs.filter((m) => m.topic.startsWith('$'));
    assert.deepEqual(leaked.map((m) => m.topic), [], 'no $ topic through # or +');
  });
}, { args: ['--sys-interval', '1'] }); // updates every second keep the suite short; the default is 10 s
