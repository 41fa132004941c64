// The Will Message a connection registered in CONNECT, and when to publish it.
import { Message } from '../protocol/message';

export interface Will {
  msg: Message;
  /** Will Delay Interval (s), v5 only [MQTT-3.1.3-9]. */
  delay: number;
  /** Will's Message Expiry Interval (s), applied when it is published; -1 = none. */
  expiry: number;
  /**
   * Who registered it, for the ACL check when it is published. A will restored from the store
   * has no username (the store keeps none): it is checked as the client id, anonymously.
   */
  writer?: { clientId: string; username: string | null };
}

/** The message to publish for `will` now: its Message Expiry Interval counts from the moment it is published. */
export function willMessage(will: Will, now: number): Message {
  const m = will.msg;
  const expiryAt = will.expiry >= 0 ? now + will.expiry * 1000 : 0;
  return new Message(m.topic, m.payload, m.qos, m.retain, m.props, expiryAt, m.origin);
}
