// The fencing arithmetic and the endpoint/key helpers, without etcd or timers.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { LeaseFence, defaultMarginMs } from '../../src/cluster/fence';
import { parseEndpoints, prefixEnd } from '../../src/cluster/etcd-client';
import { Membership, membersPrefix, newIncarnation, parseMember } from '../../src/cluster/membership';
import { Etcd3Client } from '../../src/cluster/etcd-client';
import { startEtcd, etcdBinary, INSTALL_HINT } from '../helpers/etcd';

describe('cluster fence arithmetic', () => {
  it('margin is max(500 ms, TTL/5)', () => {
    assert.equal(defaultMarginMs(2000), 500);
    assert.equal(defaultMarginMs(2500), 500);
    assert.equal(defaultMarginMs(10000), 2000);
  });

  it('deadline = send time of the last acknowledged keepalive + TTL − margin', () => {
    const f = new LeaseFence(10000);
    assert.equal(f.expired(0), true, 'nothing acknowledged yet');
    assert.equal(f.acknowledged(1000, 10), 1000 + 10000 - 2000);
    assert.equal(f.lastAckSentAt(), 1000);
    assert.equal(f.expired(8999), false);
    assert.equal(f.expired(9000), true);
    assert.equal(f.remaining(4000), 5000);
  });

  it('an older keepalive acknowledged late never moves the deadline back', () => {
    const f = new LeaseFence(2000);
    f.acknowledged(5000, 2);
    assert.equal(f.acknowledged(4000, 2), 6500);
    assert.equal(f.lastAckSentAt(), 5000);
  });

  it('uses the smaller of the TTL asked and the TTL granted; TTL 0 (lease gone) renews nothing', () => {
    const f = new LeaseFence(10000);
    assert.equal(f.acknowledged(0, 30), 8000, 'a longer grant is not trusted beyond what we asked');
    f.reset();
    assert.equal(f.acknowledged(0, 5), 3000, 'a shorter grant shortens the deadline');
    assert.equal(f.acknowledged(10000, 0), 3000);
  });

  it('refuses a margin that leaves no window', () => {
    assert.throws(() => new LeaseFence(2000, 2000), /below the TTL/);
    assert.throws(() => new LeaseFence(0), /TTL must be > 0/);
  });
});

describe('cluster helpers', () => {
  it('parseEndpoints accepts http://host:port lists and names a bad one', () => {
    assert.deepEqual(parseEndpoints('http://127.0.0.1:2379, http://[::1]:2380'), ['http://127.0.0.1:2379', 'http://[::1]:2380']);
    assert.throws(() => parseEndpoints('127.0.0.1:2379'), /invalid etcd endpoint "127\.0\.0\.1:2379"/);
    assert.throws(() => parseEndpoints('https://h:1'), /only http:\/\//);
    assert.throws(() => parseEndpoints('http://h:1/v3'), /nothing else/);
    assert.throws(() => parseEndpoints(' , '), /no etcd endpoint/);
  });

  it('prefixEnd is the first key after the prefix', () => {
    assert.deepEqual(prefixEnd(Buffer.from('/a/')), Buffer.from('/a0'));
    assert.deepEqual(prefixEnd(Buffer.from([0x61, 0xff])), Buffer.from([0x62]));
    assert.deepEqual(prefixEnd(Buffer.from([0xff])), Buffer.from([0]));
  });

  it('incarnations differ; member values must match their key', () => {
    assert.notEqual(newIncarnation(1), newIncarnation(1));
    const p = membersPrefix('c');
    const v = { nodeId: 'n1', incarnation: 'i', advertise: 'h', clusterPort: 1, startedAt: 0 };
    const kv = (key: string, value: string) => ({ key, value: Buffer.from(value), createRevision: 1n, modRevision: 1n, lease: '1' });
    assert.deepEqual(parseMember(kv(p + 'n1', JSON.stringify(v)), p), v);
    assert.equal(parseMember(kv(p + 'n2', JSON.stringify(v)), p), null);
    assert.equal(parseMember(kv(p + 'n1', '{'), p), null);
  });

  it('Membership refuses a TTL below etcd\'s minimum and bad ids before touching etcd', () => {
    const client = new Etcd3Client({ endpoints: 'http://127.0.0.1:1' });
    try {
      const base = { client, cluster: 'c', nodeId: 'n', advertise: 'h', clusterPort: 1 };
      assert.throws(() => new Membership({ ...base, ttlSec: 1 }), /TTL must be an integer >= 2 s/);
      assert.throws(() => new Membership({ ...base, nodeId: 'a/b' }), /invalid node id "a\/b"/);
      assert.throws(() => new Membership({ ...base, cluster: '' }), /invalid cluster name/);
      assert.throws(() => new Membership({ ...base, ttlSec: 2, keepaliveEveryMs: 1500 }), /keepalive period/);
      const m = new Membership({ ...base });
      assert.equal(m.ttlMs, 10000);
      assert.equal(m.marginMs, 2000);
      assert.equal(m.keepaliveEveryMs, 3333);
    } finally { client.close(); }
  });

  it('the etcd harness fails (never skips) with an install hint when the binary is missing', async () => {
    const saved = process.env.ETCD_BIN;
    process.env.ETCD_BIN = '/nonexistent/etcd';
    try {
      await assert.rejects(startEtcd(1), (err: Error) => err.message.includes(INSTALL_HINT));
    } finally {
      if (saved === undefined) delete process.env.ETCD_BIN; else process.env.ETCD_BIN = saved;
    }
    assert.ok(etcdBinary().length > 0, INSTALL_HINT);
  });
});
