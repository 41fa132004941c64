// Delivery to this worker's own sessions of one matched message. Overlapping subscriptions of
// one session yield one copy at the highest granted QoS carrying every subscription id
// [MQTT5-3.3.4-2, MQTT5-3.3.4-3]; each shared subscription is a delivery of its own.
import type { Message } from '../protocol/message';
import type { Session } from '../session/session';
import type { SessionTable } from '../session/session-table';
import type { Stored } from './pending';
import { subscriberWorker, subscriberSlot, OPT_QOS_MASK, OPT_NO_LOCAL, OPT_RETAIN_AS_PUBLISHED, OPT_SHARED } from '../../src/shared/topic-index';

export class LocalDelivery {
  private readonly touched: Session[] = [];
  private stamp = 0;

  constructor(private readonly index: number, private readonly sessions: SessionTable) {}

  /**
   * `out[from..]`: `count` subscriber triples (subscriber, options, subscription id) from the
   * trie or a peer's record. `filterOwn`: skip other workers' subscribers (a local match).
   */
  deliver(msg: Message, out: Uint32Array, from: number, count: number, filterOwn: boolean, stored: Stored | null): void {
    const me = this.index;
    const stamp = ++this.stamp;
    const touched = this.touched;
    for (let k = 0; k < count; k++) {
      const at = from + k * 3;
      const sub = out[at];
      if (filterOwn && subscriberWorker(sub) !== me) continue;
      const s = this.sessions.get(subscriberSlot(sub));
      if (!s || s.subscriber !== sub) continue;
      const opts = out[at + 1];
      const subId = out[at + 2];
      if (opts & OPT_SHARED) {
        // Shared groups are served by the publisher's node (src/cluster/README.md, "Limits"):
        // a forwarded message came here for other subscribers.
        if (msg.fromPeer) continue;
        // A shared subscription is its own delivery; No Local does not apply [MQTT5-3.8.3-4].
        const seq = stored ? stored.seqOf(sub) : 0;
        s.deliver(msg, Math.min(msg.qos, opts & OPT_QOS_MASK), false, subId ? [subId] : null, seq ? stored!.msgId : 0, seq, seq ? stored!.held : null);
        continue;
      }
      // [MQTT5-3.8.3-3]; from a peer node, the publisher is known by its client id.
      if ((opts & OPT_NO_LOCAL) && (sub === msg.origin || (msg.originId !== null && s.clientId === msg.originId))) continue;
      if (s.stamp !== stamp) { s.stamp = stamp; s.accQos = -1; s.accRap = false; s.accIds = null; touched.push(s); }
      const q = opts & OPT_QOS_MASK;
      if (q > s.accQos) s.accQos = q;
      if (opts & OPT_RETAIN_AS_PUBLISHED) s.accRap = true;
      if (subId) (s.accIds ??= []).push(subId);
    }
    for (let i = 0; i < touched.length; i++) {
      const s = touched[i];
      // Retain As Published keeps the flag; otherwise live messages go out with RETAIN 0 [MQTT5-3.3.1-12, MQTT5-3.3.1-13].
      const seq = stored ? stored.seqOf(s.subscriber) : 0;
      s.deliver(msg, Math.min(msg.qos, s.accQos), s.accRap && msg.retain, s.accIds, seq ? stored!.msgId : 0, seq, seq ? stored!.held : null);
    }
    touched.length = 0;
  }
}
