// The Will Message a connection registered in CONNECT, and when to publish it.
import type { Message } from '../protocol/message';

export interface Will {
  msg: Message;
  /** Will Delay Interval (s), v5 only [MQTT-3.1.3-9]. */
  delay: number;
  /** Will's Message Expiry Interval (s), applied when it is published; -1 = none. */
  expiry: number;
}
