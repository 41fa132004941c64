// The cluster's settings (src/config.ts with src/cluster/names.ts), and what a single node pays
// for the cluster: a coordinator started without --etcd loads no etcd client (etcd3 and its
// gRPC stack stay out of require.cache). This file runs in its own process (node --test).
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { resolveConfig, parseArgs, advertisedAddress, helpText, ConfigError } from '../../src/config';
import { Coordinator } from '../../src/coordinator/coordinator';
import { createBell } from '../../src/shared/ring';
import { createStoreIds } from '../../src/shared/store-ids';
import { createClusterState } from '../../src/shared/cluster-state';
import { topicIndex } from '../../src/shared/topic-index';

const config = (...args: string[]) => resolveConfig(parseArgs(['--durability', 'none', ...args]));
const loadedEtcd = () => Object.keys(require.cache).filter((k) => /[\\/]node_modules[\\/](etcd3|@grpc)[\\/]/.test(k));

describe('cluster settings', () => {
  test('defaults: no etcd, cluster "fleetmq", lease TTL 10 s', () => {
    const c = config();
    assert.equal(c.etcd, undefined);
    assert.equal(c.clusterName, 'fleetmq');
    assert.equal(c.leaseTtl, 10);
    assert.equal(c.clusterJoinTimeoutMs, 15000);
  });

  test('--etcd needs --node-id; endpoints, node ids and cluster names are checked', () => {
    assert.throws(() => config('--etcd', 'http://127.0.0.1:2379'), (e: Error) => e instanceof ConfigError && /--etcd needs --node-id/.test(e.message));
    assert.throws(() => config('--etcd', 'http://127.0.0.1:2379,127.0.0.1:2380', '--node-id', 'n1'), /--etcd: invalid etcd endpoint "127\.0\.0\.1:2380"/);
    assert.throws(() => config('--etcd', 'http://127.0.0.1:2379', '--node-id', '-x'), /invalid --node-id "-x"/);
    assert.throws(() => config('--etcd', 'http://127.0.0.1:2379', '--node-id', 'n1', '--cluster-name', 'a b'), /invalid --cluster-name "a b"/);
    assert.throws(() => config('--lease-ttl', '1'), /out of range 2\.\.3600/);
    const c = config('--etcd', 'http://127.0.0.1:2379', '--node-id', 'n1', '--lease-ttl', '2', '--cluster-port', '9000');
    assert.equal(c.nodeId, 'n1');
    assert.equal(c.leaseTtl, 2);
    assert.equal(c.clusterPort, 9000);
  });

  test('--help documents each cluster flag with its config key; a --config file sets them', () => {
    const help = helpText();
    for (const [flag, key] of [['--etcd', 'etcd'], ['--node-id', 'nodeId'], ['--cluster-name', 'clusterName'], ['--cluster-port', 'clusterPort'],
      ['--advertise', 'advertise'], ['--lease-ttl', 'leaseTtl'], ['--cluster-join-timeout-ms', 'clusterJoinTimeoutMs']]) {
      assert.match(help, new RegExp(`  ${flag} .*\\(config key "${key}"\\)`), `--help documents ${flag}`);
    }
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleetmq-cluster-config-'));
    try {
      const file = path.join(dir, 'c.json');
      fs.writeFileSync(file, JSON.stringify({ etcd: 'http://127.0.0.1:2379', nodeId: 'n7', clusterName: 'east', clusterPort: 7001, advertise: 'n7.local', leaseTtl: 5 }));
      const c = config('--config', file, '--lease-ttl', '3');
      assert.deepEqual([c.etcd, c.nodeId, c.clusterName, c.clusterPort, c.advertise, c.leaseTtl], ['http://127.0.0.1:2379', 'n7', 'east', 7001, 'n7.local', 3]);
      fs.writeFileSync(file, JSON.stringify({ etcd: 'http://127.0.0.1:2379' }));
      assert.throws(() => config('--config', file), /--etcd needs --node-id/);
    } finally { fs.rmSync(dir, { recursive: true, force: true }); }
  });

  test('the advertised address: --advertise, else a specific --host, else the hostname', () => {
    assert.equal(advertisedAddress(config('--advertise', '10.1.2.3')), '10.1.2.3');
    assert.equal(advertisedAddress(config('--host', '127.0.0.2')), '127.0.0.2');
    assert.notEqual(advertisedAddress(config('--host', '0.0.0.0', '--allow-anonymous', 'true')), '0.0.0.0');
  });

  test('a coordinator without --etcd loads no etcd client', async () => {
    assert.deepEqual(loadedEtcd(), [], 'nothing loaded etcd3 before the test');
    const main: unknown[] = [];
    const c = new Coordinator({ workers: 1, config: config(), trieId: topicIndex.create(), storeIds: createStoreIds(), coordBell: createBell(), clusterState: createClusterState() }, (m) => main.push(m));
    await c.start();
    await c.close();
    assert.deepEqual(loadedEtcd(), []);
    assert.equal(main.some((m) => (m as { t: string }).t === 'cluster'), false);
    // The check can fail: loading the cluster member module brings etcd3 in.
    await import('../../src/cluster/node');
    assert.notDeepEqual(loadedEtcd(), []);
  });
});
