// The bytes of a session handover between nodes (handover.ts): a session's snapshot and its
// queue as JSON text with byte fields in base64, checked field by field on the way in (a peer's
// answer is not trusted to have the shape the worker expects). A control path: one snapshot
// and one queue per takeover, never per message.
import type { WireMessage, WireQueued, WireSession, WireInflight } from '../shared/messages';

/**
 * Most message bytes (topic + payload + properties) one handover carries in its queue; the
 * rest of the queue is left out and counted (a gRPC message is at most 16 MiB, base64 adds a third).
 */
export const HANDOVER_MAX_BYTES = 8 * 1024 * 1024;

const b64 = (u: Uint8Array): string => Buffer.from(u.buffer, u.byteOffset, u.byteLength).toString('base64');
const bytes = (s: unknown): Uint8Array | null => (typeof s === 'string' ? new Uint8Array(Buffer.from(s, 'base64')) : null);
const int = (x: unknown, max: number): x is number => typeof x === 'number' && Number.isInteger(x) && x >= 0 && x <= max;
const obj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null;
const ids = (x: unknown): x is number[] | null => x === null || (Array.isArray(x) && x.every((i) => int(i, 268435455)));

interface JsonMessage { topic: string; payload: string; qos: number; retain: boolean; props: string | null; expiryAt: number }

const msgOut = (m: WireMessage): JsonMessage => ({ topic: m.topic, payload: b64(m.payload), qos: m.qos, retain: m.retain, props: m.props ? b64(m.props) : null, expiryAt: m.expiryAt });

function msgIn(x: unknown): WireMessage | null {
  if (!obj(x) || typeof x.topic !== 'string' || !int(x.qos, 2) || typeof x.retain !== 'boolean' || !int(x.expiryAt, Number.MAX_SAFE_INTEGER)) return null;
  const payload = bytes(x.payload);
  const props = x.props === null ? null : bytes(x.props);
  if (!payload || (x.props !== null && !props)) return null;
  return { topic: x.topic, payload, qos: x.qos, retain: x.retain, props, expiryAt: x.expiryAt };
}

const size = (m: WireMessage): number => m.topic.length + m.payload.byteLength + (m.props?.byteLength ?? 0);

/** A session's snapshot (subscriptions, in-flight both ways, expiry) as text. */
export function encodeSession(w: WireSession): string {
  return JSON.stringify({
    ...w,
    inflight: w.inflight.map((f) => ({ ...f, msg: f.msg ? msgOut(f.msg) : null })),
    queue: [],
  });
}

export function decodeSession(text: string): WireSession | null {
  let x: unknown;
  try { x = JSON.parse(text); } catch { return null; }
  if (!obj(x) || typeof x.clientId !== 'string' || !int(x.protocolVersion, 5) || !int(x.expiryInterval, 0xffffffff)) return null;
  if (!Array.isArray(x.subscriptions) || !Array.isArray(x.inflight) || !Array.isArray(x.inboundQos2)) return null;
  const subscriptions: WireSession['subscriptions'] = [];
  for (const s of x.subscriptions as unknown[]) {
    if (!obj(s) || typeof s.filter !== 'string' || !int(s.opts, 255) || !int(s.subId, 268435455) || !int(s.retainHandling, 2)) return null;
    subscriptions.push({ filter: s.filter, opts: s.opts, subId: s.subId, retainHandling: s.retainHandling });
  }
  const inflight: WireInflight[] = [];
  for (const f of x.inflight as unknown[]) {
    if (!obj(f) || !int(f.packetId, 65535) || f.packetId === 0 || !int(f.qos, 2) || (f.state !== 'publish' && f.state !== 'pubrel') || !ids(f.subIds)) return null;
    const msg = f.msg === null ? null : msgIn(f.msg);
    if (f.msg !== null && !msg) return null;
    if (f.state === 'publish' && !msg) return null;
    inflight.push({ packetId: f.packetId, qos: f.qos, state: f.state, msg, subIds: f.subIds, msgId: 0 });
  }
  const inboundQos2 = (x.inboundQos2 as unknown[]).filter((p): p is number => int(p, 65535));
  return { clientId: x.clientId, protocolVersion: x.protocolVersion, expiryInterval: x.expiryInterval, subscriptions, inflight, queue: [], inboundQos2 };
}

/** The queue as text, oldest first, up to HANDOVER_MAX_BYTES of messages; `dropped` were left out. */
export function encodeQueue(queue: WireQueued[], maxBytes = HANDOVER_MAX_BYTES): { text: string; dropped: number } {
  const out: Array<{ msg: JsonMessage; subIds: number[] | null }> = [];
  let total = 0;
  for (const q of queue) {
    total += size(q.msg);
    if (total > maxBytes) break;
    out.push({ msg: msgOut(q.msg), subIds: q.subIds });
  }
  return { text: JSON.stringify(out), dropped: queue.length - out.length };
}

export function decodeQueue(text: string): WireQueued[] | null {
  let x: unknown;
  try { x = JSON.parse(text); } catch { return null; }
  if (!Array.isArray(x)) return null;
  const out: WireQueued[] = [];
  for (const q of x as unknown[]) {
    if (!obj(q) || !ids(q.subIds)) return null;
    const msg = msgIn(q.msg);
    if (!msg) return null;
    out.push({ msg, subIds: q.subIds, msgId: 0, seq: 0 });
  }
  return out;
}
