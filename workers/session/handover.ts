// A session's move to another node, as the worker sees it (src/cluster/handover.ts has the
// whole protocol): the identity of a message that may reach both the old and the new node
// while routes move, so the copy the client may already have goes with DUP set.
import type { Message } from '../protocol/message';

/**
 * Topic, length and an FNV-1a hash of the payload: only computed for a session in the middle of
 * a handover (never on the publish path otherwise). Two different messages with the same key
 * cost a DUP flag on the second, never its delivery.
 */
export function handoverKey(m: Message): string {
  const p = m.payload;
  let h = 0x811c9dc5;
  for (let i = 0; i < p.length; i++) { h ^= p[i]; h = Math.imul(h, 0x01000193); }
  return `${m.topicString}\0${p.length}\0${h >>> 0}`;
}
