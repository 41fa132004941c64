// What every cluster test block starts and must stop, even when a test failed: its clients
// first (so no reconnect races the kills), then the broker processes (SIGKILL: a cluster test
// has nothing to flush), the fault-injecting proxies, etcd, and the temp dirs last.
import type { Clients } from './clients';
import type { EtcdCluster } from './etcd';
import type { TcpProxy } from './tcp-proxy';
import { removeDir } from './broker';

export interface ClusterParts {
  clients?: Clients;
  brokers?: Iterable<{ kill(): Promise<void> }>;
  proxies?: Iterable<TcpProxy | undefined>;
  etcd?: EtcdCluster;
  dirs?: Iterable<string>;
}

export async function tearDownCluster(p: ClusterParts): Promise<void> {
  await p.clients?.closeAll();
  for (const b of p.brokers ?? []) await b.kill();
  for (const x of p.proxies ?? []) await x?.close();
  await p.etcd?.stop();
  for (const d of p.dirs ?? []) removeDir(d);
}
