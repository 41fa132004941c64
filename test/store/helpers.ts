// Shared helpers for the store tests: sample records and a full snapshot of a store's contents.
import type { Store } from '../../src/store/store';
import type {
  InflightEntry, NewMessage, QueueEntry, StoredMessage, StoredSession, StoredSubscription,
} from '../../src/store/types';

export interface Snapshot {
  order: string[];
  sessions: Map<string, StoredSession>;
  subs: Map<string, StoredSubscription>;
  retained: Map<string, NewMessage>;
  messages: Map<bigint, StoredMessage>;
  queues: Map<string, QueueEntry[]>;
  inflight: Map<string, InflightEntry[]>;
  inbound: Map<string, number[]>;
}

function push<V>(m: Map<string, V[]>, k: string, v: V): void {
  const list = m.get(k);
  if (list) list.push(v); else m.set(k, [v]);
}

/** Runs loadAll and records everything, plus the order in which kinds arrived. */
export async function snapshot(store: Store): Promise<Snapshot> {
  const s: Snapshot = {
    order: [], sessions: new Map(), subs: new Map(), retained: new Map(), messages: new Map(),
    queues: new Map(), inflight: new Map(), inbound: new Map(),
  };
  const kind = (k: string) => { if (s.order[s.order.length - 1] !== k) s.order.push(k); };
  await store.loadAll({
    session: (x) => { kind('session'); s.sessions.set(x.clientId, x); },
    subscription: (x) => { kind('subscription'); s.subs.set(`${x.clientId} ${x.filter}`, x); },
    retained: (x) => { kind('retained'); s.retained.set(x.topic, x); },
    message: (x) => { kind('message'); s.messages.set(x.id, x); },
    queued: (c, e) => { kind('queued'); push(s.queues, c, e); },
    inflight: (c, e) => { kind('inflight'); push(s.inflight, c, e); },
    inboundQos2: (c, p) => { kind('inbound'); push(s.inbound, c, p); },
  });
  return s;
}

export function session(clientId: string, over: Partial<StoredSession> = {}): StoredSession {
  return { clientId, protocolVersion: 5, sessionExpiryInterval: 3600, disconnectedAt: null, will: null, ...over };
}

export function message(topic: string, payload: string, over: Partial<NewMessage> = {}): NewMessage {
  return { topic, payload: Buffer.from(payload), qos: 1, retain: false, properties: {}, publishedAt: 1_700_000_000_000, ...over };
}

export function sub(clientId: string, filter: string, over: Partial<StoredSubscription> = {}): StoredSubscription {
  return { clientId, filter, qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0, ...over };
}

export const fullProps = {
  payloadFormatIndicator: 1 as const,
  messageExpiryInterval: 60,
  expiresAt: 1_700_000_060_000,
  contentType: 'application/json',
  responseTopic: 'reply/to/me',
  correlationData: Buffer.from([0, 1, 2, 255]),
  userProperties: [['a', '1'], ['a', '2'], ['ünï', 'cödé']] as Array<[string, string]>,
};
