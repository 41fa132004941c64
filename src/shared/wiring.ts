// What the main thread hands each worker and the coordinator at start (structured-cloned
// workerData; SharedArrayBuffers are shared, MessagePorts transferred).
import type { MessagePort } from 'node:worker_threads';
import type { BrokerConfig } from '../config';
import type { AclRules } from '../auth/acl';
import type { TlsMaterial } from './listeners';
import type { LogWiring } from '../log/thread-log';

export interface WorkerWiring {
  index: number;
  config: BrokerConfig;
  trieId: number;
  /** main → this worker: accepted fds, each with its listener's index (ACCEPT_RECORD_BYTES). */
  acceptRing: SharedArrayBuffer;
  /** this worker's doorbell, rung by every ring it consumes. */
  bell: SharedArrayBuffer;
  /** inbound[j]: ring worker j → this worker (null for j === index). */
  inbound: (SharedArrayBuffer | null)[];
  /** outbound[j]: ring this worker → worker j. */
  outbound: (SharedArrayBuffer | null)[];
  bells: SharedArrayBuffer[];
  /** Float64 counters, COUNTERS_PER_WORKER per worker (src/shared/counters.ts). */
  counters: SharedArrayBuffer;
  /** One heartbeat slot per thread; this worker writes slot `index` (src/shared/heartbeats.ts). */
  heartbeats: SharedArrayBuffer;
  coordinator: MessagePort;
  /** Password checks: this worker ↔ the main thread's AuthService (src/auth/messages.ts). */
  auth: MessagePort;
  /** The ACL in force when this worker starts (null without --acl-file); reloads come over `auth`. */
  acl: { rules: AclRules; generation: number } | null;
  /** The payload slab (src/slab-layout.ts) and each worker's holder index in it (-1: none). */
  slab: SharedArrayBuffer | null;
  slabHolders: SharedArrayBuffer;
  /** This worker's store ring to the coordinator (workers/README.md, "Persistence and write-behind") and the coordinator's doorbell. */
  storeRing: SharedArrayBuffer;
  coordBell: SharedArrayBuffer;
  /** The shared store id counter (src/shared/store-ids.ts). */
  storeIds: SharedArrayBuffer;
  /** src/shared/cluster-state.ts (the coordinator writes, workers read). */
  clusterState: SharedArrayBuffer;
  startedAt: number;
  testHooks: boolean;
  /** Certificates of each TLS / WSS listener as of now, by listener index (null: none configured). */
  tls: (TlsMaterial | null)[] | null;
  /** Connections open per worker and listener (src/shared/open-connections.ts): this worker counts its closes out. */
  open: SharedArrayBuffer;
  /** This worker's log ring to the main thread's writer and the shared level (src/log/). */
  log: LogWiring;
  /** Per-worker gauges: connections by transport, messages in flight and queued (src/shared/worker-gauges.ts). */
  gauges: SharedArrayBuffer;
}

/** main → worker: a peer was replaced; its rings to and from this worker are new. */
export interface PeerReset {
  t: 'peer-reset';
  index: number;
  inbound: SharedArrayBuffer;
  outbound: SharedArrayBuffer;
}

/** An accept record: the fd (int32), then the index of the listener that accepted it (src/shared/listeners.ts). */
export const ACCEPT_RECORD_BYTES = 8;
