// Control-plane messages between workers and the coordinator (postMessage, structured clone).
// None of these is on the per-message path except retained updates, which only RETAIN
// publishes make, and store operations, which only QoS >= 1 traffic of persistent sessions
// makes.
import type { InflightEntry, NewMessage, StoredSession, StoredSubscription } from '../store/types';

/** A message as it crosses threads by structured clone (sessions, retained, takeover). */
export interface WireMessage {
  topic: string;
  payload: Uint8Array;
  qos: number;
  retain: boolean;
  /** MQTT 5 properties to forward, already encoded (no alias, no subscription ids, no expiry). */
  props: Uint8Array | null;
  /** Absolute expiry (ms since epoch), 0 = never [MQTT-3.3.2-5]. */
  expiryAt: number;
}

export interface WireSubscription {
  filter: string;
  opts: number;
  subId: number;
  retainHandling: number;
}

export interface WireInflight {
  packetId: number;
  qos: number;
  /** 'publish': waiting for PUBACK/PUBREC; 'pubrel': PUBREC seen, waiting for PUBCOMP. */
  state: 'publish' | 'pubrel';
  msg: WireMessage | null;
  subIds: number[] | null;
  /** Store message id when the entry is persisted, else 0. */
  msgId: number;
}

/** A queued delivery: the message, how it goes out, and its store slot (0 = not stored). */
export interface WireQueued {
  msg: WireMessage;
  subIds: number[] | null;
  msgId: number;
  seq: number;
}

/** A session in transit between workers on takeover. */
export interface WireSession {
  clientId: string;
  protocolVersion: number;
  expiryInterval: number;
  subscriptions: WireSubscription[];
  inflight: WireInflight[];
  queue: WireQueued[];
  inboundQos2: number[];
}

/** A session read back from the store at start, handed to a worker to own (offline). */
export interface RestoredSession extends WireSession {
  /** ms since epoch; the restart time if the client was connected when the broker stopped. */
  disconnectedAt: number;
  will: { msg: WireMessage; delay: number } | null;
}

/** A persistent subscriber that must have a message durably queued before the publisher's ack. */
export interface PersistTarget {
  sub: number;
  qos: number;
  retain: boolean;
  subIds: number[];
  /** The queue slot's id when the worker took it (src/shared/store-ids.ts); absent: the coordinator takes one. */
  seq?: number;
  /** Already in flight under this packet id: stored as an in-flight entry instead of a queue slot. */
  pid?: number;
}

/** Store operations a worker asks the coordinator to group-commit (workers/README.md, "Persistence and write-behind"). */
export type StoreOp =
  | { o: 'session'; session: StoredSession }
  | { o: 'delSession'; clientId: string }
  | { o: 'sub'; sub: StoredSubscription }
  | { o: 'unsub'; clientId: string; filter: string }
  | { o: 'dequeue'; clientId: string; seq: number }
  | { o: 'inflight'; clientId: string; entry: InflightEntry }
  | { o: 'delInflight'; clientId: string; packetId: number }
  | { o: 'inbound'; clientId: string; packetId: number }
  | { o: 'delInbound'; clientId: string; packetId: number }
  | { o: 'bind'; clientId: string; sub: number }
  | { o: 'unbind'; sub: number }
  /** A retained message (empty payload: cleared); $SYS topics are not stored. */
  | { o: 'retain'; msg: WireMessage }
  /**
   * Stores the message once and queues it for each target; answered with ids in `stored`.
   * `id` (and each target's `seq`) are set when the worker routed the message before storing it.
   */
  | { o: 'publish'; msg: NewMessage; targets: PersistTarget[]; id?: number };

/**
 * Per 'publish' op of a request that the coordinator took the ids for (no `id`), in order: the
 * message id and each target's queue seq (0: unknown subscriber).
 */
export interface PersistResult { msgId: number; seqs: number[] }

export type ToCoordinator =
  | { t: 'claim'; req: number; clientId: string; clean: boolean }
  | { t: 'released'; req: number }
  | { t: 'ended'; clientId: string }
  | { t: 'retain'; msg: WireMessage }
  /** Retained updates packed by src/shared/retained-batch.ts (a worker's turn's worth). */
  | { t: 'retain-batch'; bytes: Uint8Array }
  /** A page of retained messages for `filter`: from a new cursor (`cursor` 0) or an open one. */
  | { t: 'retained?'; req: number; filter: string; cursor: number }
  /** The subscription's feed stopped before the end (its session ended). */
  | { t: 'retained-close'; cursor: number }
  /** identity: a relayed TLS connection's certificate CN with --use-identity-as-username (workers/net/relay.ts). */
  | { t: 'move'; to: number; fd: number; bytes: Uint8Array; identity?: string | null; origin?: ConnOrigin }
  /** Subscription journal: lets the coordinator drop a dead worker's subscriptions from the trie. */
  | { t: 'sub'; sub: number; filter: string }
  | { t: 'unsub'; sub: number; filter: string }
  /** Cross-node forwarding (workers/cluster/forwarder.ts): one routed batch's messages for peer nodes (src/cluster/forward-wire.ts). */
  | { t: 'cluster-fwd'; buf: Uint8Array }
  /** The forwarded batch `batch` this worker was handed is routed. */
  | { t: 'cluster-fwd-done'; batch: number }
  /** A turn's claims and ends in one post (workers/coordination/coordinator-client.ts), in order. */
  | { t: 'batch'; msgs: ToCoordinator[] }
  | HandoverFromWorker;
// Store requests do not travel here: each worker has a store ring (src/shared/store-wire.ts).

export type FromCoordinator =
  /**
   * local: this worker owns the session already; redirect: move the connection to that worker;
   * refused: the cluster's client-id registry could not settle the claim (CONNACK "server busy").
   */
  | { t: 'granted'; req: number; existed: boolean; local?: boolean; redirect?: number; refused?: string; handover?: WireSession }
  | { t: 'conn'; fd: number; bytes: Uint8Array; identity?: string | null; origin?: ConnOrigin }
  /** Every restored session for this worker has been sent. */
  | { t: 'adopt-done' }
  | { t: 'release'; req: number; clientId: string; clean: boolean }
  /** `cursor` names the open cursor for the next page; 0 when this page was the last. */
  | { t: 'retained'; req: number; cursor: number; msgs: WireMessage[] }
  | { t: 'stored'; req: number; results: PersistResult[]; error: string | null }
  | { t: 'adopt'; session: RestoredSession }
  /** To every worker: this node fenced itself; drop every client (src/cluster/README.md). */
  | { t: 'cluster-fenced' }
  /** To worker 0: this node's id and the member list, for $SYS/broker/cluster/. */
  | { t: 'cluster-view'; node: string; incarnation: string; members: string[] }
  /** A turn's registry answers for one worker in one post (src/coordinator/registry.ts), in order. */
  | { t: 'batch'; msgs: FromCoordinator[] }
  | ClusterForwardMsg
  | HandoverToWorker;

/**
 * A session moving to another node (src/cluster/handover.ts). On the old node: 'handover-out'
 * ends the connection and answers a snapshot (subscriptions, in-flight, expiry; the queue stays
 * and keeps filling); 'handover-finish' ok answers the whole queue and drops the session, not ok
 * puts it back offline. On the new node: the session comes with the 'granted' and holds its
 * queue until 'handover-rest' brings the old node's queue (null: none came).
 */
export type HandoverToWorker =
  | { t: 'handover-out'; req: number; clientId: string }
  | { t: 'handover-finish'; req: number; clientId: string; ok: boolean }
  | { t: 'handover-rest'; clientId: string; queue: WireQueued[] | null };

export type HandoverFromWorker =
  /** null: no session here to hand over (or one that ends with its connection): end it as before. */
  | { t: 'handover-snap'; req: number; session: WireSession | null }
  | { t: 'handover-queue'; req: number; queue: WireQueued[] }
  /** The handed-in session is installed (its subscriptions journaled before this). */
  | { t: 'handover-installed'; clientId: string };

/**
 * Where a moved connection came from: the listener that counts it open (-1: none, a relay's
 * end, whose transport stays counted where it is), the client's address when the fd's own
 * peer is not it (a PROXY protocol header's, or a relay's client), else null, and for a relay's
 * end the transport the client really uses (the auth callout and its logs name it).
 */
export interface ConnOrigin { listener: number; peer: string | null; transport?: TransportName }
export type TransportName = 'tcp' | 'tls' | 'ws' | 'wss';

/** Coordinator -> worker about cross-node forwarding (workers/cluster/forwarder.ts). */
export type ClusterForwardMsg =
  /**
   * `taken`: bytes of this worker's batches now queued per peer; `ok` / `failed`: forward ids
   * every target node acknowledged (or that need no more waiting) / that were refused;
   * `dropped`: QoS 0 messages dropped at a full peer queue.
   */
  | { t: 'cluster-fwd-acks'; taken: number; ok: number[]; failed: number[]; dropped: number }
  /** Messages peers forwarded, to route here: entries `u32 len | wire entry`. */
  | { t: 'cluster-fwd-in'; batch: number; buf: Uint8Array };
