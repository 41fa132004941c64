// An application message inside a worker. Bytes stay bytes: the topic is a view of the
// frame that carried it, and a string is made only when something needs one (retained,
// outbound topic aliases), then cached.
import type { WireMessage } from '../../src/shared/messages';

export class Message {
  private topicStr: string | null = null;
  /** Encoded QoS 0 PUBLISH per (protocol, retain flag): encode once, write many (workers/README.md, step 6). */
  enc3: Buffer | null = null;
  enc3r: Buffer | null = null;
  enc5: Buffer | null = null;
  enc5r: Buffer | null = null;
  /** The ACL refused its publisher this topic: only acknowledged, never routed (handlers/publish.ts). */
  denied = false;
  /**
   * Forwarded by a peer node (workers/cluster/forwarder.ts): delivered to this node's
   * subscribers only, never forwarded again, never stored as retained here.
   */
  fromPeer = false;
  /** A forwarded message's publisher client id (null: none or local): No Local by client id. */
  originId: string | null = null;

  constructor(
    readonly topic: Buffer,
    readonly payload: Buffer,
    readonly qos: number,
    readonly retain: boolean,
    /** v5 properties forwarded unchanged (no alias, subscription ids or expiry), or null. */
    readonly props: Buffer | null,
    /** Absolute expiry in ms, 0 = never. */
    readonly expiryAt: number,
    /** Subscriber id of the publishing session (for No Local), or 0xffffffff. */
    readonly origin: number,
  ) {}

  /** The topic as a string, when the caller already made one (the ACL check of a PUBLISH). */
  knownTopic(s: string): void { this.topicStr = s; }

  /** The topic string if one was made already, else null (makes none). */
  get topicStringIfMade(): string | null { return this.topicStr; }

  get topicString(): string {
    return (this.topicStr ??= this.topic.toString('utf8'));
  }

  get size(): number {
    return this.topic.length + this.payload.length + (this.props ? this.props.length : 0);
  }

  toWire(): WireMessage {
    return {
      topic: this.topicString,
      // Copies: structured clone of a view would carry its whole backing buffer (a socket chunk).
      payload: new Uint8Array(this.payload),
      qos: this.qos,
      retain: this.retain,
      props: this.props ? new Uint8Array(this.props) : null,
      expiryAt: this.expiryAt,
    };
  }

  static fromWire(w: WireMessage, origin = NO_ORIGIN): Message {
    const m = new Message(Buffer.from(w.topic), Buffer.from(w.payload.buffer, w.payload.byteOffset, w.payload.byteLength),
      w.qos, w.retain, w.props ? Buffer.from(w.props.buffer, w.props.byteOffset, w.props.byteLength) : null, w.expiryAt, origin);
    m.topicStr = w.topic;
    return m;
  }
}

export const NO_ORIGIN = 0xffffffff;

/**
 * A copy in its own exact-size ArrayBuffer, for anything posted to another thread: structured
 * clone of a view carries its whole backing buffer (a 64 KiB socket chunk, an 8 KiB pool slab).
 */
export function detached(b: Uint8Array): Buffer {
  const a = new Uint8Array(b.length);
  a.set(b);
  return Buffer.from(a.buffer);
}
