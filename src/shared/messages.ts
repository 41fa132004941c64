// Control-plane messages between workers and the coordinator (postMessage, structured clone).
// None of these is on the per-message path except retained updates, which only RETAIN
// publishes make.

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
}

/** A session in transit between workers on takeover. */
export interface WireSession {
  clientId: string;
  protocolVersion: number;
  expiryInterval: number;
  subscriptions: WireSubscription[];
  inflight: WireInflight[];
  queue: WireMessage[];
  inboundQos2: number[];
}

export type ToCoordinator =
  | { t: 'claim'; req: number; clientId: string; clean: boolean }
  | { t: 'released'; req: number; session: WireSession | null }
  | { t: 'ended'; clientId: string }
  | { t: 'retain'; msg: WireMessage }
  | { t: 'retained?'; req: number; filters: string[] };

export type FromCoordinator =
  | { t: 'granted'; req: number; session: WireSession | null; existed: boolean }
  | { t: 'release'; req: number; clientId: string; clean: boolean }
  | { t: 'retained'; req: number; msgs: WireMessage[][] };
