// The Store interface the broker programs against. Both implementations (memory-store.ts,
// rocks-store.ts) pass test/store/abstract-store-suite.ts.
//
// Lifecycle: open → loadAll (exactly once, even on an empty store: it builds the index the
// writes depend on) → any number of commits → close.
import type { StoreBatch } from './batch';
import type {
  InflightEntry, NewMessage, QueueEntry, RetainedStamp, StoredMessage, StoredSession, StoredSubscription,
} from './types';

export interface CommitOptions {
  /** Sync the WAL before resolving (`--durability fsync`). */
  sync?: boolean;
}

export type LoadPhase =
  | 'index' | 'sessions' | 'subscriptions' | 'retained' | 'retained-stamps' | 'messages' | 'queues' | 'inflight' | 'inbound';

export interface LoadProgress {
  phase: LoadPhase;
  /** Records read in this phase so far. */
  records: number;
  /** True on the last report of a phase. */
  phaseDone: boolean;
}

/**
 * Called once per record, in this order: sessions, subscriptions, retained, messages, queued,
 * inflight, inboundQos2. A message arrives before any queue or in-flight entry naming it.
 * Queue entries of one client arrive in queue order, in-flight entries in packet id order.
 */
export interface LoadVisitor {
  session?(s: StoredSession): void;
  subscription?(s: StoredSubscription): void;
  retained?(m: NewMessage): void;
  /** A retained topic's cluster stamp or tombstone (after every retained message). */
  retainedStamp?(topic: string, s: RetainedStamp): void;
  message?(m: StoredMessage): void;
  queued?(clientId: string, e: QueueEntry): void;
  inflight?(clientId: string, e: InflightEntry): void;
  inboundQos2?(clientId: string, packetId: number): void;
}

export interface LoadOptions {
  onProgress?(p: LoadProgress): void;
  /** Report every this many records per phase (default 10000). */
  progressEvery?: number;
}

export interface LoadSummary {
  sessions: number;
  subscriptions: number;
  retained: number;
  messages: number;
  queued: number;
  inflight: number;
  inbound: number;
  /** Message bodies nothing referenced (deleted during load). */
  orphanMessagesDeleted: number;
  /** Queue/in-flight entries whose message body was missing (deleted during load). */
  danglingRefsDropped: number;
}

export interface Store {
  /** False for the memory store: nothing survives the process. */
  readonly durable: boolean;

  /** Restores everything (see LoadVisitor for the order) and builds the write index. */
  loadAll(visitor: LoadVisitor, opts?: LoadOptions): Promise<LoadSummary>;

  /** A new, empty batch bound to this store's id allocators. */
  batch(): StoreBatch;

  /**
   * Applies the batch atomically. Commits issued in the same tick (and while a write is in
   * progress) are group-committed into one write; ordering between commits is preserved.
   * Resolves once the write is in the WAL (synced if `sync`); after a failed write the store
   * rejects every later commit with StoreError WRITE_FAILED.
   */
  commit(batch: StoreBatch, opts?: CommitOptions): Promise<void>;

  /** A message body by id, e.g. to deliver a queued message lazily. */
  getMessage(id: bigint): Promise<StoredMessage | undefined>;

  getSession(clientId: string): StoredSession | undefined;

  /** Offline sessions whose expiry has passed at `now` (ms); the caller deletes them. */
  expiredSessions(now: number): StoredSession[];

  /** Number of queue slots of a session (for the caller's bounds). */
  queueLength(clientId: string): number;

  /** Reclaims disk space after deletions (no-op in memory). */
  compact(): Promise<void>;

  /** Waits for pending commits, then releases the store. */
  close(): Promise<void>;
}
