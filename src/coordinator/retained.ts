// Retained messages, one copy per process (workers ask for them on SUBSCRIBE). A linear scan
// per wildcard filter: fine for thousands of retained topics; a topic trie is the next step.
import type { WireMessage } from '../shared/messages';
import { topicMatches } from '../shared/topic-match';

export class RetainedStore {
  private readonly byTopic = new Map<string, WireMessage>();

  /** An empty payload clears the topic [MQTT-3.3.1-6]. */
  set(msg: WireMessage): void {
    if (msg.payload.byteLength === 0) this.byTopic.delete(msg.topic);
    else this.byTopic.set(msg.topic, msg);
  }

  match(filter: string, now: number): WireMessage[] {
    const out: WireMessage[] = [];
    if (!filter.includes('+') && !filter.includes('#')) {
      const m = this.byTopic.get(filter);
      if (m) this.keepIfLive(filter, m, now, out);
      return out;
    }
    for (const [topic, m] of this.byTopic) if (topicMatches(filter, topic)) this.keepIfLive(topic, m, now, out);
    return out;
  }

  private keepIfLive(topic: string, m: WireMessage, now: number, out: WireMessage[]): void {
    if (m.expiryAt !== 0 && m.expiryAt <= now) { this.byTopic.delete(topic); return; }
    out.push(m);
  }

  get size(): number { return this.byTopic.size; }
}
