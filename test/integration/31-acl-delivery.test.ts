// 31 (delivery): how deliveries are checked against the ACL, through each of the three ways a
// connection's deliveries may be decided (workers/auth/acl-gate.ts, WholeReads): skipped
// (every subscription reads whole), the narrow checker (a partial subscription, few rules meet
// it), the cached full decision (more than 32 rules meet it), and with client rules from a JWT.
//
// - A `#` subscriber with a deny rule in the middle never sees the denied topic, from publishers
//   on either worker; nor does a shared subscription, an overlap of a whole and a partial filter,
//   or a subscriber of a filter more than 32 rules meet. A whole filter gets everything.
// - After an UNSUBSCRIBE of the partial filter, what is left still arrives, nothing denied.
// - SIGHUP: a filter that reads whole becomes partial (a deny inside it): its deliveries are
//   checked with the new rules from then on; and whole again when the deny goes.
// - JWT ACL claims in front of the file: a claim's deny inside a subscribed filter withholds
//   that topic; a filter the file covers whole still gets all of it.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as jose from 'jose';
import type { IPublishPacket, ISubscribePacket, ISubackPacket, IPubackPacket, Packet } from 'mqtt-packet';
import { launchBroker, makeTempDir, removeDir, Broker } from '../helpers/broker';
import { RawClient, rawSession } from '../helpers/raw-client';
import { uid } from '../helpers/ids';

let dir: string;
before(() => { dir = makeTempDir('fleetmq-acl-delivery-'); });
after(() => removeDir(dir));

async function subscribeCodes(c: RawClient, filters: string[], messageId: number): Promise<number[]> {
  const from = c.packets.length;
  c.send({ cmd: 'subscribe', messageId, subscriptions: filters.map((topic) => ({ topic, qos: 1 })) } as ISubscribePacket);
  const ack = await c.waitFor<ISubackPacket>((p) => p.cmd === 'suback' && p.messageId === messageId, `SUBACK ${messageId}`, undefined, from);
  return ack.granted as number[];
}

/** Publishes `topics` at QoS 1 (payload = topic) and waits for every PUBACK, each 0 (allowed). */
async function publishAll(c: RawClient, topics: string[], firstId: number): Promise<void> {
  topics.forEach((topic, i) => c.send({ cmd: 'publish', topic, payload: Buffer.from(topic), qos: 1, messageId: firstId + i, retain: false, dup: false } as Packet));
  for (let i = 0; i < topics.length; i++) {
    const a = await c.waitFor<IPubackPacket>((p) => p.cmd === 'puback' && p.messageId === firstId + i, `PUBACK ${firstId + i}`);
    assert.equal(a.reasonCode ?? 0, 0, `the publisher may write ${topics[i]}`);
  }
}

const got = (c: RawClient, topic: string): Promise<IPublishPacket> => c.waitFor<IPublishPacket>((p) => p.cmd === 'publish' && p.topic === topic, `a PUBLISH on ${topic}`);
const topicsOf = (c: RawClient, k: string): string[] => c.publishes().map((p) => p.topic).filter((t) => t.includes(k)).sort();

// Anonymous clients read and write everything but mid/<k>/secret (and what is below it), and
// 40 topics under many/: a filter over many/ meets more rules than the narrow checker keeps.
// The user `pub` (the publishers) may write everything.
const aclText = (k: string): string => [
  'topic readwrite #',
  `topic deny mid/${k}/secret/#`,
  ...Array.from({ length: 40 }, (_, i) => `topic deny many/${k}/d${i}`),
  'user pub',
  'topic readwrite #',
].join('\n') + '\n';

describe('deliveries with a deny rule in the middle (2 workers)', () => {
  let b: Broker;
  const k = uid('m').replace(/-/g, '_');
  const open: RawClient[] = [];
  const session = async (version: 4 | 5, username?: string): Promise<RawClient> => {
    const c = await rawSession(b.port, version, { clientId: uid('c'), username });
    open.push(c);
    return c;
  };
  before(async () => {
    fs.writeFileSync(path.join(dir, 'acl-mid'), aclText(k));
    b = await launchBroker(2, ['--acl-file', path.join(dir, 'acl-mid'), '--durability', 'none']);
  });
  after(async () => {
    for (const c of open) c.destroy();
    await b?.kill();
  });

  test('#, a shared #, an overlap, a filter 40 deny rules meet: never the denied topic; a whole filter: everything', { timeout: 120000 }, async () => {
    const hash = await session(5);
    const hash3 = await session(4);
    const shared = await session(5);
    const overlap = await session(5);
    const many = await session(4);
    const whole = await session(5);
    assert.deepEqual(await subscribeCodes(hash, ['#'], 1), [1]);
    assert.deepEqual(await subscribeCodes(hash3, ['#'], 1), [1]);
    assert.deepEqual(await subscribeCodes(shared, [`$share/g-${k}/mid/#`], 1), [1]);
    assert.deepEqual(await subscribeCodes(overlap, [`mid/${k}/+`, `mid/${k}/#`, `ok/${k}/#`], 1), [1, 1, 1]);
    assert.deepEqual(await subscribeCodes(many, [`many/${k}/+`], 1), [1]);
    assert.deepEqual(await subscribeCodes(whole, [`ok/${k}/#`, `mid/${k}/open/#`], 1), [1, 1]);
    // Two publishers: with 2 workers, some deliveries cross workers.
    const pubs = [await session(5, 'pub'), await session(4, 'pub')];
    const want = { hash: [] as string[], mid: [] as string[], overlap: [] as string[], many: [] as string[], whole: [] as string[] };
    for (const [i, p] of pubs.entries()) {
      const topics = [`mid/${k}/secret`, `mid/${k}/secret/x/${i}`, `mid/${k}/open/${i}`, `mid/${k}/o${i}`, `ok/${k}/${i}`,
        `many/${k}/d7`, `many/${k}/d39`, `many/${k}/free${i}`, `ok/${k}/end${i}`];
      await publishAll(p, topics, 1 + i * 100);
      const allowed = topics.filter((t) => !t.includes('/secret') && !/\/d\d+$/.test(t));
      want.hash.push(...allowed);
      want.mid.push(...allowed.filter((t) => t.startsWith('mid/')));
      want.overlap.push(...allowed.filter((t) => t.startsWith('mid/') || t.startsWith('ok/')));
      want.many.push(...allowed.filter((t) => t.startsWith('many/')));
      want.whole.push(...allowed.filter((t) => t.startsWith('ok/') || t.startsWith(`mid/${k}/open/`)));
    }
    for (const c of [hash, hash3, overlap, whole]) { await got(c, `ok/${k}/end0`); await got(c, `ok/${k}/end1`); }
    await got(many, `many/${k}/free1`);
    await got(shared, `mid/${k}/o1`);
    assert.deepEqual(topicsOf(hash, k), want.hash.sort(), '# (v5)');
    assert.deepEqual(topicsOf(hash3, k), want.hash.sort(), '# (v3.1.1)');
    assert.deepEqual(topicsOf(shared, k), want.mid.sort(), '$share/g/mid/#');
    assert.deepEqual(topicsOf(overlap, k), want.overlap.sort(), 'mid/+ and mid/# and ok/#');
    assert.deepEqual(topicsOf(many, k), want.many.sort(), 'many/+ (more rules than the narrow checker keeps)');
    assert.deepEqual(topicsOf(whole, k), want.whole.sort(), 'filters that read whole');

    // The partial filter goes; what is left (ok/#, reads whole) still gets everything it matches.
    const from = overlap.packets.length;
    overlap.send({ cmd: 'unsubscribe', messageId: 9, unsubscriptions: [`mid/${k}/+`, `mid/${k}/#`] } as Packet);
    await overlap.waitFor((p) => p.cmd === 'unsuback' && p.messageId === 9, 'UNSUBACK', undefined, from);
    await publishAll(pubs[0], [`mid/${k}/secret`, `mid/${k}/after`, `ok/${k}/after`], 50);
    await got(overlap, `ok/${k}/after`);
    await got(hash, `ok/${k}/after`);
    assert.deepEqual(topicsOf(overlap, k), [...want.overlap, `ok/${k}/after`].sort(), 'after UNSUBSCRIBE: ok/# only');
    assert.deepEqual(topicsOf(hash, k), [...want.hash, `mid/${k}/after`, `ok/${k}/after`].sort());
  });
});

test('SIGHUP: a filter that read whole becomes partial and is checked, then whole again (1 worker)', { timeout: 120000 }, async () => {
  const k = uid('h').replace(/-/g, '_');
  const file = path.join(dir, 'acl-reload');
  fs.writeFileSync(file, 'topic readwrite #\nuser pub\ntopic readwrite #\n');
  const b = await launchBroker(1, ['--acl-file', file, '--durability', 'none']);
  const open: RawClient[] = [];
  try {
    const sub = await rawSession(b.port, 5, { clientId: uid('s') });
    const pub = await rawSession(b.port, 4, { clientId: uid('p'), username: 'pub' });
    open.push(sub, pub);
    assert.deepEqual(await subscribeCodes(sub, [`b/${k}/#`], 1), [1]);
    await publishAll(pub, [`b/${k}/hidden`, `b/${k}/end1`], 1);
    await got(sub, `b/${k}/end1`);
    assert.deepEqual(topicsOf(sub, k), [`b/${k}/end1`, `b/${k}/hidden`], 'reads whole: everything');

    fs.writeFileSync(file, `topic readwrite #\ntopic deny b/${k}/hidden\nuser pub\ntopic readwrite #\n`);
    b.proc.kill('SIGHUP');
    await b.waitForOutput(/SIGHUP: acl generation 2 in force in every worker/);
    // The first delivery after a reload decides afresh anyway: hidden comes after one that does not.
    await publishAll(pub, [`b/${k}/open`, `b/${k}/hidden`, `b/${k}/end2`], 10);
    await got(sub, `b/${k}/end2`);
    assert.deepEqual(topicsOf(sub, k), [`b/${k}/end1`, `b/${k}/end2`, `b/${k}/hidden`, `b/${k}/open`], 'partial after the reload: the new deny withholds');

    fs.writeFileSync(file, 'topic readwrite #\nuser pub\ntopic readwrite #\n');
    b.proc.kill('SIGHUP');
    await b.waitForOutput(/SIGHUP: acl generation 3 in force in every worker/);
    await publishAll(pub, [`b/${k}/hidden`, `b/${k}/end3`], 20);
    await got(sub, `b/${k}/end3`);
    assert.equal(sub.publishes(`b/${k}/hidden`).length, 2, 'whole again: delivered');
  } finally {
    for (const c of open) c.destroy();
    await b.kill();
  }
});

test('JWT ACL claims in front of the file: a claim\'s deny inside a filter withholds; a filter the file covers whole gets all (2 workers)', { timeout: 120000 }, async () => {
  const k = uid('j').replace(/-/g, '_');
  const secret = crypto.randomBytes(32).toString('hex');
  fs.writeFileSync(path.join(dir, 'jwt-secret'), `${secret}\n`);
  fs.writeFileSync(path.join(dir, 'acl-jwt'), `pattern readwrite own/%u/#\npattern read feed/#\npattern deny feed/${k}/closed\n`);
  const b = await launchBroker(2, ['--jwt-secret-file', path.join(dir, 'jwt-secret'), '--jwt-username-claim', 'sub', '--acl-file', path.join(dir, 'acl-jwt'), '--durability', 'none']);
  const open: RawClient[] = [];
  try {
    const sign = (claims: jose.JWTPayload): Promise<string> =>
      new jose.SignJWT({ exp: Math.floor(Date.now() / 1000) + 600, ...claims }).setProtectedHeader({ alg: 'HS256' }).sign(new Uint8Array(Buffer.from(secret)));
    const token = await sign({ sub: 'ann', acl: [
      { permission: 'deny', action: 'subscribe', topic: `news/${k}/private/#` },
      { permission: 'allow', action: 'subscribe', topic: 'news/#' },
      { permission: 'allow', action: 'publish', topic: '#' },
    ] });
    const ann = await rawSession(b.port, 5, { clientId: uid('ann'), username: 'ann', password: Buffer.from(token) });
    const ann3 = await rawSession(b.port, 4, { clientId: uid('ann3'), username: 'ann', password: Buffer.from(token) });
    open.push(ann, ann3);
    for (const c of [ann, ann3]) assert.deepEqual(await subscribeCodes(c, [`news/${k}/#`, `own/ann/${k}/+`], 1), [1, 1]);
    // Filters the claims do not match: the file reads own/%u whole and feed/# partly.
    const file = await rawSession(b.port, 5, { clientId: uid('f'), username: 'ann', password: Buffer.from(token) });
    // Filters that read whole: a claim covers one, the file the other (deliveries skip the check).
    const whole = await rawSession(b.port, 4, { clientId: uid('w'), username: 'ann', password: Buffer.from(token) });
    open.push(file, whole);
    assert.deepEqual(await subscribeCodes(file, [`own/ann/${k}/#`, `feed/${k}/+`], 1), [1, 1]);
    assert.deepEqual(await subscribeCodes(whole, [`news/${k}/open`, `own/ann/${k}/#`], 1), [1, 1]);
    const pub = await rawSession(b.port, 5, { clientId: uid('p'), username: 'ann', password: Buffer.from(token) });
    open.push(pub);
    const topics = [`news/${k}/private/x`, `news/${k}/private`, `news/${k}/open`, `own/ann/${k}/1`, `feed/${k}/closed`, `feed/${k}/open`, `own/ann/${k}/end`];
    await publishAll(pub, topics, 1);
    for (const c of [ann, ann3, file, whole]) await got(c, `own/ann/${k}/end`);
    const wantAnn = [`news/${k}/open`, `own/ann/${k}/1`, `own/ann/${k}/end`].sort();
    assert.deepEqual(topicsOf(ann, k), wantAnn, 'v5: the claim denies news/.../private/#');
    assert.deepEqual(topicsOf(ann3, k), wantAnn, 'v3.1.1 likewise');
    assert.deepEqual(topicsOf(file, k), [`feed/${k}/open`, `own/ann/${k}/1`, `own/ann/${k}/end`].sort(), 'the file decides what no claim matches');
    assert.deepEqual(topicsOf(whole, k), [`news/${k}/open`, `own/ann/${k}/1`, `own/ann/${k}/end`].sort(), 'filters that read whole');
  } finally {
    for (const c of open) c.destroy();
    await b.kill();
  }
});
