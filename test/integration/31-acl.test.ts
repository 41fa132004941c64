// 31: authorization with a Mosquitto ACL file (--acl-file), 1 and 3 workers.
//
// - SUBSCRIBE to a filter the client may read nothing of: 0x87 (v5) / 0x80 (3.1.1) for that
//   filter, the other filters of the same SUBSCRIBE granted.
// - A `#` subscriber never gets a topic it may not read (live or retained), also when the
//   publisher is on another worker: exactly the readable ones arrive.
// - A refused PUBLISH: v5 PUBACK / PUBREC 0x87, v3.1.1 acknowledged as usual; it reaches nobody
//   and is counted in $SYS/broker/messages/dropped/not-authorised. Wills likewise.
// - %c / %u patterns, the anonymous section.
// - SIGHUP reloads the file: new SUBSCRIBEs and deliveries to connected clients follow it; a file
//   that does not parse keeps the old rules and says why.
// - A malformed file at start: one line naming the file and line, exit code 1 (as a bad password
//   file); a missing value for --acl-file is a configuration error, exit code 2.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { IPublishPacket, ISubackPacket, IPubackPacket, IPubrecPacket, IPubcompPacket, Packet, ISubscribePacket, IConnectPacket } from 'mqtt-packet';
import { launchBroker, runCli, makeTempDir, removeDir, Broker } from '../helpers/broker';
import { RawClient, rawSession } from '../helpers/raw-client';
import { SysWatcher } from '../helpers/sys-watcher';
import { uid } from '../helpers/ids';
import { startMosquitto } from '../helpers/mosquitto';

const ACL = `# anonymous clients
topic read $SYS/broker/#
topic readwrite anon/#
topic deny anon/secret

user alice
topic readwrite a/#
topic read news/#
topic deny news/secret/#
topic write in/#

user bob
topic readwrite #
topic deny b/private

pattern readwrite clients/%c/#
pattern read users/%u/inbox
`;

let dir: string;
before(() => { dir = makeTempDir('fleetmq-acl-'); });
after(() => removeDir(dir));

function writeAcl(name: string, text: string): string {
  const f = path.join(dir, name);
  fs.writeFileSync(f, text);
  return f;
}

/** SUBSCRIBE `filters` (QoS 1) in one packet; the SUBACK's codes. */
async function subscribeCodes(c: RawClient, filters: string[], messageId = 7): Promise<number[]> {
  const from = c.packets.length;
  c.send({ cmd: 'subscribe', messageId, subscriptions: filters.map((topic) => ({ topic, qos: 1 })) } as ISubscribePacket);
  const ack = await c.waitFor<ISubackPacket>((p) => p.cmd === 'suback' && p.messageId === messageId, `SUBACK ${messageId}`, undefined, from);
  return ack.granted as number[];
}

const pub = (c: RawClient, topic: string, qos: 0 | 1 | 2, messageId: number, payload = topic, retain = false): void => {
  c.send({ cmd: 'publish', topic, payload: Buffer.from(payload), qos, retain, dup: false, ...(qos > 0 ? { messageId } : {}) } as Packet);
};

const ackOf = (c: RawClient, cmd: 'puback' | 'pubrec', messageId: number): Promise<IPubackPacket | IPubrecPacket> =>
  c.waitFor((p) => p.cmd === cmd && p.messageId === messageId, `${cmd.toUpperCase()} ${messageId}`);

/** The topics `c` received (PUBLISHes), in order. */
const topicsOf = (c: RawClient, prefix: string): string[] => c.publishes().map((p) => p.topic).filter((t) => t.includes(prefix));

/** Waits until `c` got a PUBLISH on `topic`. */
const got = (c: RawClient, topic: string): Promise<IPublishPacket> => c.waitFor<IPublishPacket>((p) => p.cmd === 'publish' && p.topic === topic, `a PUBLISH on ${topic}`);

for (const workers of [1, 3]) {
  describe(`ACL file, ${workers} worker${workers === 1 ? '' : 's'}`, () => {
    let b: Broker;
    let sys: SysWatcher;
    const open: RawClient[] = [];
    const session = async (version: 4 | 5, fields: Partial<IConnectPacket> = {}): Promise<RawClient> => {
      const c = await rawSession(b.port, version, { clientId: uid('acl'), ...fields });
      open.push(c);
      return c;
    };
    before(async () => {
      b = await launchBroker(workers, ['--acl-file', writeAcl(`acl-${workers}`, ACL), '--sys-interval', '1', '--durability', 'none']);
      assert.match(b.output(), /acl file .*: 11 rules/);
      sys = await SysWatcher.start(b.port);
    });
    after(async () => {
      for (const c of open) c.destroy();
      sys?.close();
      await b?.kill();
    });

    test('SUBSCRIBE: an unreadable filter is refused (0x87 v5, 0x80 v3.1.1), the others in the packet granted', async () => {
      const filters = ['news/#', 'secret/#', 'a/+', 'news/secret/x', 'in/x', '#', '$share/g/a/#', '$share/g/in/#'];
      const v5 = await session(5, { username: 'alice' });
      assert.deepEqual(await subscribeCodes(v5, filters), [1, 0x87, 1, 0x87, 0x87, 1, 1, 0x87]);
      const v3 = await session(4, { username: 'alice' });
      assert.deepEqual(await subscribeCodes(v3, filters), [1, 0x80, 1, 0x80, 0x80, 1, 1, 0x80]);
    });

    test('a # subscriber gets exactly the topics it may read, from publishers on any worker', async () => {
      const k = uid('w').replace(/-/g, '_');
      // Several subscribers and publishers, so with 3 workers some deliveries cross workers.
      const subs = [await session(5, { username: 'alice', clientId: `sub5-${k}` }), await session(4, { username: 'alice', clientId: `sub4-${k}` }),
        await session(5, { username: 'alice', clientId: `sub5b-${k}` })];
      for (const s of subs) assert.deepEqual(await subscribeCodes(s, ['#']), [1]);
      const pubs = [await session(5, { username: 'bob' }), await session(4, { username: 'bob' })];
      for (const [i, p] of pubs.entries()) {
        const topics = [`a/${k}/${i}`, `news/${k}/${i}`, `news/secret/${k}/${i}`, `in/${k}/${i}`, `other/${k}/${i}`, `clients/sub5-${k}/${i}`, `a/${k}/end${i}`];
        topics.forEach((t, j) => pub(p, t, 1, j + 1));
        for (let j = 0; j < topics.length; j++) assert.equal((await ackOf(p, 'puback', j + 1)).reasonCode ?? 0, 0, `bob may publish ${topics[j]}`);
      }
      for (const [n, s] of subs.entries()) {
        await got(s, `a/${k}/end0`);
        await got(s, `a/${k}/end1`);
        const want = [0, 1].flatMap((i) => [`a/${k}/${i}`, `news/${k}/${i}`, ...(n === 0 ? [`clients/sub5-${k}/${i}`] : []), `a/${k}/end${i}`]);
        assert.deepEqual(topicsOf(s, k).sort(), want.sort(), `subscriber ${n}`);
      }
      await sys.waitCounter(/messages\/withheld\/not-authorised$/, 2 * 3 * 3, 'withheld deliveries counted');
    });

    test('retained messages sent on SUBSCRIBE are checked too', async () => {
      const k = uid('r').replace(/-/g, '_');
      const bob = await session(5, { username: 'bob' });
      pub(bob, `news/${k}/open`, 1, 1, 'r1', true);
      pub(bob, `news/secret/${k}/closed`, 1, 2, 'r2', true);
      pub(bob, `news/${k}/open2`, 1, 3, 'r3', true);
      await ackOf(bob, 'puback', 3);
      const alice = await session(5, { username: 'alice' });
      assert.deepEqual(await subscribeCodes(alice, ['news/#']), [1]);
      // The retained feed sends in order; a live message behind it marks its end.
      pub(bob, `news/${k}/live`, 1, 4);
      await got(alice, `news/${k}/live`);
      assert.deepEqual(topicsOf(alice, k).sort(), [`news/${k}/live`, `news/${k}/open`, `news/${k}/open2`].sort());
      const retained = alice.publishes().filter((p) => p.topic.includes(k) && p.retain).map((p) => p.topic);
      assert.deepEqual(retained.sort(), [`news/${k}/open`, `news/${k}/open2`].sort());
    });

    test('a refused PUBLISH: v5 PUBACK / PUBREC 0x87, v3.1.1 acknowledged; it reaches nobody, in order, counted', async () => {
      const k = uid('p').replace(/-/g, '_');
      const bob = await session(5, { username: 'bob' });
      assert.deepEqual(await subscribeCodes(bob, [`b/${k}/#`, `a/${k}/#`]), [1, 1]);
      const before = await sys.current('messages/dropped/not-authorised');
      const v5 = await session(5, { username: 'alice' });
      // In one write: refused QoS 1, allowed QoS 1, refused QoS 2, refused QoS 0, allowed QoS 1.
      pub(v5, `b/${k}/1`, 1, 1);
      pub(v5, `a/${k}/2`, 1, 2);
      pub(v5, `b/${k}/3`, 2, 3);
      pub(v5, `b/${k}/4`, 0, 0);
      pub(v5, `a/${k}/5`, 1, 5);
      await ackOf(v5, 'puback', 5);
      const acks = v5.packets.filter((p) => p.cmd === 'puback' || p.cmd === 'pubrec') as Array<IPubackPacket | IPubrecPacket>;
      assert.deepEqual(acks.map((p) => [p.cmd, p.messageId, p.reasonCode ?? 0]),
        [['puback', 1, 0x87], ['puback', 2, 0], ['pubrec', 3, 0x87], ['puback', 5, 0]], 'acknowledged in order, refused ones 0x87');

      const v3 = await session(4, { username: 'alice' });
      pub(v3, `b/${k}/6`, 1, 6);
      pub(v3, `b/${k}/7`, 2, 7);
      assert.equal((await ackOf(v3, 'puback', 6)).cmd, 'puback');
      await ackOf(v3, 'pubrec', 7);
      v3.send({ cmd: 'pubrel', messageId: 7 });
      await v3.waitFor<IPubcompPacket>((p) => p.cmd === 'pubcomp' && p.messageId === 7, 'PUBCOMP 7');
      pub(v3, `a/${k}/8`, 1, 8);
      await ackOf(v3, 'puback', 8);

      await got(bob, `a/${k}/8`);
      assert.deepEqual(topicsOf(bob, k).sort(), [`a/${k}/2`, `a/${k}/5`, `a/${k}/8`], 'only the allowed PUBLISHes were delivered');
      const now = await sys.current('messages/dropped/not-authorised');
      assert.ok(now - before >= 5, `dropped/not-authorised grew by ${now - before}, expected at least 5`);
    });

    test('%c and %u patterns; the anonymous section', async () => {
      const k = uid('c').replace(/-/g, '_');
      const dev = await session(5, { clientId: `dev-${k}` });
      assert.deepEqual(await subscribeCodes(dev, [`clients/dev-${k}/#`, `clients/other-${k}/#`, 'anon/#', 'anon/secret', 'a/#', `users/${k}/inbox`]),
        [1, 0x87, 1, 0x87, 0x87, 0x87]);
      const carol = await session(4, { username: `carol-${k}` });
      assert.deepEqual(await subscribeCodes(carol, [`users/carol-${k}/inbox`, `users/dave-${k}/inbox`, `clients/dev-${k}/#`]), [1, 0x80, 0x80]);
      const bob = await session(5, { username: 'bob' });
      pub(bob, `users/carol-${k}/inbox`, 1, 1);
      pub(bob, `clients/dev-${k}/cmd`, 1, 2);
      await got(carol, `users/carol-${k}/inbox`);
      await got(dev, `clients/dev-${k}/cmd`);
      // The anonymous client writes its own place and anon/..., not anon/secret or elsewhere.
      pub(dev, `clients/dev-${k}/up`, 1, 3);
      pub(dev, 'anon/secret', 1, 4);
      pub(dev, `a/${k}`, 1, 5);
      pub(dev, `anon/${k}`, 1, 6);
      const codes = await Promise.all([3, 4, 5, 6].map(async (id) => (await ackOf(dev, 'puback', id)).reasonCode ?? 0));
      assert.deepEqual(codes, [0, 0x87, 0x87, 0]);
      await got(dev, `anon/${k}`);
      await got(dev, `clients/dev-${k}/up`);
    });

    test('a will to a topic its client may not write is not published, and counted', async () => {
      const k = uid('will').replace(/-/g, '_');
      const bob = await session(5, { username: 'bob' });
      assert.deepEqual(await subscribeCodes(bob, [`a/${k}/#`, `b/${k}/#`]), [1, 1]);
      const before = await sys.current('messages/dropped/not-authorised');
      const denied = await session(4, { username: 'alice', will: { topic: `b/${k}/will`, payload: Buffer.from('no'), qos: 1, retain: false } });
      const allowed = await session(4, { username: 'alice', will: { topic: `a/${k}/will`, payload: Buffer.from('yes'), qos: 1, retain: false } });
      denied.destroy();
      allowed.destroy();
      await got(bob, `a/${k}/will`);
      await sys.waitCounter(/messages\/dropped\/not-authorised$/, before + 1, 'the refused will counted');
      assert.deepEqual(topicsOf(bob, k), [`a/${k}/will`]);
    });
  });
}

for (const workers of [1, 3]) {
  test(`SIGHUP reloads the ACL for new SUBSCRIBEs and for delivery to connected clients (${workers} worker${workers === 1 ? '' : 's'})`, { timeout: 120000 }, async () => {
    const file = writeAcl(`reload-${workers}`, 'user alice\ntopic read news/#\nuser bob\ntopic readwrite #\n');
    const b = await launchBroker(workers, ['--acl-file', file, '--durability', 'none']);
    const open: RawClient[] = [];
    try {
      const session = async (version: 4 | 5, username: string) => { const c = await rawSession(b.port, version, { username }); open.push(c); return c; };
      const alice = await session(5, 'alice');
      assert.deepEqual(await subscribeCodes(alice, ['#']), [1]);
      const bob = await session(4, 'bob');
      pub(bob, 'news/1', 1, 1);
      pub(bob, 'z/1', 1, 2);
      pub(bob, 'news/end1', 1, 3);
      await got(alice, 'news/end1');
      assert.deepEqual(topicsOf(alice, '/'), ['news/1', 'news/end1']);

      // Alice now reads z/... and no longer news/...
      fs.writeFileSync(file, 'user alice\ntopic read z/#\nuser bob\ntopic readwrite #\n');
      b.proc.kill('SIGHUP');
      await b.waitForOutput(/SIGHUP: acl file reloaded: 2 rules/);
      await b.waitForOutput(/SIGHUP: acl generation 2 in force in every worker/);
      pub(bob, 'news/2', 1, 4);
      pub(bob, 'z/2', 1, 5);
      pub(bob, 'z/end2', 1, 6);
      await got(alice, 'z/end2');
      assert.deepEqual(topicsOf(alice, '/'), ['news/1', 'news/end1', 'z/2', 'z/end2'], 'delivery follows the reloaded rules (cached decisions dropped)');
      const fresh = await session(4, 'alice');
      assert.deepEqual(await subscribeCodes(fresh, ['news/#', 'z/#']), [0x80, 1]);

      // A file that does not parse: the rules stay, the log says why with the line.
      fs.writeFileSync(file, 'user alice\ntopic read news/#\ntopic maybe x\n');
      b.proc.kill('SIGHUP');
      await b.waitForOutput(/SIGHUP: acl file not reloaded, the previous one stays in force: .*line 3: access must be read, write, readwrite or deny, got \\?"maybe\\?"/); // the record's msg is JSON-escaped
      assert.deepEqual(await subscribeCodes(fresh, ['news/#', 'z/#'], 8), [0x80, 1]);
      assert.ok(!alice.closed && !bob.closed, 'reloads dropped no connection');
    } finally {
      for (const c of open) c.destroy();
      await b.kill();
    }
  });
}

test('a malformed or missing ACL file stops the start: one line, exit code 1; no value for --acl-file: exit code 2', async () => {
  const bad = writeAcl('bad', '# fine\ntopic read a/#\ntopic read a/#/b\n');
  const r = await runCli(['--port', '0', '--durability', 'none', '--acl-file', bad]);
  assert.equal(r.listened, false);
  assert.equal(r.code, 1, r.stderr);
  assert.equal(r.stderr, `fleetmq: cannot start: ${bad}: line 3: invalid topic "a/#/b": # must be a whole level and the last one\n`);
  const missing = path.join(dir, 'no-such-acl');
  const m = await runCli(['--port', '0', '--durability', 'none', '--acl-file', missing]);
  assert.equal(m.code, 1, m.stderr);
  assert.equal(m.stderr, `fleetmq: cannot start: ${missing}: cannot read: ENOENT\n`);
  const n = await runCli(['--port', '0', '--acl-file']);
  assert.equal(n.code, 2, n.stderr);
  assert.match(n.stderr, /--acl-file needs a value/);
});

// The same file, the same clients and the same PUBLISHes against the real Mosquitto: who may
// publish what and who receives what must be decided alike (Mosquitto grants every SUBSCRIBE and
// filters at delivery, so all subscribe to #, which fleetmq grants to whoever may read anything).
describe('the same decisions as Mosquitto 2.0 for the same ACL file', () => {
  const FILE = `topic read public/#
topic deny public/secret
topic readwrite anon/#
user alice
topic readwrite alice/#
topic read shared/+/status
topic deny alice/private
topic write shared/cmd
user bob
topic read #
topic bob/free
user root
topic readwrite #
pattern readwrite clients/%c/#
pattern read users/%u/inbox
pattern deny clients/%c/locked
pattern readwrite end/%c
`;
  const WHO: Array<{ id: string; username?: string }> = [{ id: 'id-anon' }, { id: 'id-alice', username: 'alice' }, { id: 'id-bob', username: 'bob' }, { id: 'id-carol', username: 'carol' }];
  const TOPICS = ['public/news', 'public/secret', 'anon/x', 'alice/x', 'alice/private', 'shared/d1/status', 'shared/cmd', 'bob/free', 'other/x',
    'users/alice/inbox', 'users/carol/inbox', ...WHO.flatMap((w) => [`clients/${w.id}/x`, `clients/${w.id}/locked`])];

  /** Per identity: the topics it received from root; and the (publisher, topic) pairs root received. */
  async function decisions(port: number): Promise<{ reads: Record<string, string[]>; writes: string[] }> {
    const open: RawClient[] = [];
    const connect = async (id: string, username?: string) => {
      const c = await rawSession(port, 4, { clientId: id, ...(username ? { username } : {}) });
      open.push(c);
      return c;
    };
    try {
      const root = await connect('id-root', 'root');
      const subs = await Promise.all(WHO.map((w) => connect(w.id, w.username)));
      for (const s of subs) await s.subscribe('#', 1, 1);
      let mid = 1;
      for (const t of [...TOPICS, ...WHO.map((w) => `end/${w.id}`)]) { pub(root, t, 1, mid); await ackOf(root, 'puback', mid++); }
      const reads: Record<string, string[]> = {};
      for (const [i, s] of subs.entries()) {
        await got(s, `end/${WHO[i].id}`);
        reads[WHO[i].id] = s.publishes().map((p) => p.topic).filter((t) => !t.startsWith('end/')).sort();
      }
      await root.subscribe('#', 1, 2);
      for (const [i, s] of subs.entries()) {
        let m = 100;
        for (const t of TOPICS) { pub(s, t, 1, m, WHO[i].id); await ackOf(s, 'puback', m++); }
        pub(s, `end/${WHO[i].id}`, 1, m, WHO[i].id);
        await ackOf(s, 'puback', m);
        await got(root, `end/${WHO[i].id}`);
      }
      const writes = root.publishes().filter((p) => !p.topic.startsWith('end/') && WHO.some((w) => w.id === p.payload.toString()))
        .map((p) => `${p.payload.toString()} ${p.topic}`).sort();
      return { reads, writes };
    } finally { for (const c of open) c.destroy(); }
  }

  test('reads and writes of anonymous, sectioned and unknown users, patterns, deny', { timeout: 120000 }, async () => {
    const file = writeAcl('compare', FILE);
    const mosq = await startMosquitto(['allow_anonymous true', `acl_file ${file}`]);
    let theirs: Awaited<ReturnType<typeof decisions>>;
    try { theirs = await decisions(mosq.port); } finally { await mosq.stop(); }
    const b = await launchBroker(1, ['--acl-file', file, '--durability', 'none']);
    let ours: Awaited<ReturnType<typeof decisions>>;
    try { ours = await decisions(b.port); } finally { await b.kill(); }
    assert.deepEqual(ours.reads, theirs.reads, 'the topics each client received');
    assert.deepEqual(ours.writes, theirs.writes, 'the PUBLISHes that went through');
    // Not vacuous: some of each were refused and some allowed.
    assert.ok(ours.writes.length > 0 && ours.writes.length < WHO.length * TOPICS.length, `writes: ${ours.writes.length}`);
    assert.ok(Object.values(ours.reads).every((r) => r.length > 0) && Object.values(ours.reads).some((r) => r.length < TOPICS.length / 2), JSON.stringify(ours.reads));
  });
});
