// The persisted data model. These shapes are what a restart gives back to the broker, so they
// carry exactly what MQTT needs to resume a session: nothing derived, nothing per connection.

export type ProtocolVersion = 3 | 4 | 5;
export type QoS = 0 | 1 | 2;

/** Session expiry value meaning "never expires" (v5 0xFFFFFFFF; v3 persistent sessions). */
export const NEVER_EXPIRES = 0xffffffff;

/**
 * MQTT 5 PUBLISH properties worth persisting. Topic alias and subscription identifiers are
 * per connection / per subscription, so they are not part of the message.
 */
export interface MessageProperties {
  payloadFormatIndicator?: 0 | 1;
  /** As received, seconds; kept for re-encoding. */
  messageExpiryInterval?: number;
  /** Absolute expiry (ms since epoch) so the remaining lifetime is right after downtime. */
  expiresAt?: number;
  contentType?: string;
  responseTopic?: string;
  correlationData?: Buffer;
  /** Pairs, not a record: order and duplicate names are significant [MQTT-3.3.2-18]. */
  userProperties?: Array<[string, string]>;
}

export interface StoredWill {
  topic: string;
  payload: Buffer;
  qos: QoS;
  retain: boolean;
  properties: MessageProperties;
  /** Will delay interval, seconds. */
  delayInterval: number;
}

export interface StoredSession {
  clientId: string;
  protocolVersion: ProtocolVersion;
  /** Seconds; NEVER_EXPIRES for never. */
  sessionExpiryInterval: number;
  /** ms since epoch; null while a connection holds the session. */
  disconnectedAt: number | null;
  will: StoredWill | null;
}

export interface StoredSubscription {
  clientId: string;
  /** Full filter as subscribed, `$share/<group>/...` included. */
  filter: string;
  qos: QoS;
  noLocal: boolean;
  retainAsPublished: boolean;
  retainHandling: 0 | 1 | 2;
  /** 0 or absent: none. */
  subscriptionIdentifier?: number;
}

/** A message body without its id: what a caller hands to `StoreBatch.addMessage`. */
export interface NewMessage {
  topic: string;
  payload: Buffer;
  qos: QoS;
  retain: boolean;
  properties: MessageProperties;
  /** ms since epoch. */
  publishedAt: number;
}

/**
 * A retained topic's cluster stamp (a hybrid logical clock, src/cluster/hlc.ts): the last set or
 * clear of the topic a cluster member applied. A tombstone is a clear kept so an older set
 * arriving later (a stale node) cannot bring the message back.
 */
export interface RetainedStamp {
  /** Wall ms of the stamp. */
  t: number;
  /** Logical counter × 2^32 + node hash. */
  c: number;
  tombstone: boolean;
}

/** Stored once, referenced by every queue and in-flight entry that needs it. */
export interface StoredMessage extends NewMessage {
  id: bigint;
}

/** One offline-queue slot of a session; `seq` orders the queue. */
export interface QueueEntry {
  seq: bigint;
  messageId: bigint;
  /** Effective QoS for this subscriber (min of published and granted). */
  qos: QoS;
  /** Retain flag as it must be delivered (after retain-as-published). */
  retain: boolean;
  subscriptionIdentifiers: number[];
}

export type NewQueueEntry = Omit<QueueEntry, 'seq'>;

export type InflightState = 'publish' | 'pubrel';

/** An outbound QoS 1/2 message awaiting PUBACK / PUBREC / PUBCOMP. */
export interface InflightEntry {
  packetId: number;
  /** null once in 'pubrel': the body is no longer needed, so its reference is released. */
  messageId: bigint | null;
  qos: 1 | 2;
  state: InflightState;
  dup: boolean;
  /** Delivery flags kept so a redelivery is the same PUBLISH with DUP set [MQTT-4.4.0-1]. */
  retain: boolean;
  subscriptionIdentifiers: number[];
}
