// Retained messages, one copy per process, and the cursors that stream them to new
// subscriptions page by page, as fast as each subscriber drains them (workers/session/
// retained-feed.ts), so a SUBSCRIBE to `#` over 100K retained messages never copies them all
// into one session at once. A linear scan per wildcard filter (spread over the pages); an
// index by topic level is the next step.
import type { WireMessage } from '../shared/messages';
import { topicMatches } from '../shared/topic-match';

interface Entry { msg: WireMessage; seq: number }

/** A page holds at most this many messages ... */
export const PAGE_MESSAGES = 256;
/** ... and stops after the message that takes it past this many payload bytes. */
export const PAGE_BYTES = 256 * 1024;
/** Entries a wildcard cursor may scan for one page before it answers (possibly empty-handed). */
const SCAN_PER_PAGE = 65536;

/**
 * Where one subscription's retained messages are read from. A Map iterator is live: entries
 * deleted meanwhile are skipped, and a topic set again keeps its place. A message set after the
 * cursor opened (a newer `seq`) is skipped: the subscription is already in the trie then, so it
 * arrives as a live message, and sending it twice would let the older copy land last.
 */
export class RetainedCursor {
  done = false;
  constructor(
    readonly filter: string,
    readonly startSeq: number,
    readonly iter: IterableIterator<[string, Entry]> | null,
  ) {}
}

export class RetainedStore {
  private readonly byTopic = new Map<string, Entry>();
  private seq = 0;

  /** An empty payload clears the topic [MQTT-3.3.1-6]. */
  set(msg: WireMessage): void {
    if (msg.payload.byteLength === 0) this.byTopic.delete(msg.topic);
    else this.byTopic.set(msg.topic, { msg, seq: ++this.seq });
  }

  get size(): number { return this.byTopic.size; }

  /** The admin API's read of one topic (an expired message is dropped, as a cursor would). */
  get(topic: string, now: number): WireMessage | null {
    const e = this.byTopic.get(topic);
    if (!e) return null;
    if (e.msg.expiryAt !== 0 && e.msg.expiryAt <= now) { this.byTopic.delete(topic); return null; }
    return e.msg;
  }

  /**
   * The admin API's list: messages on topics matching `filter`, sorted by topic, the first
   * `limit` after `after` (keyset paging), and how many match in all. One scan of every topic.
   */
  list(filter: string, after: string, limit: number, now: number): { messages: WireMessage[]; total: number } {
    const topics: string[] = [];
    let total = 0;
    for (const [topic, e] of this.byTopic) {
      if (e.msg.expiryAt !== 0 && e.msg.expiryAt <= now) continue;
      if (!topicMatches(filter, topic)) continue;
      total++;
      if (topic > after) topics.push(topic);
    }
    topics.sort();
    return { messages: topics.slice(0, limit).map((t) => this.byTopic.get(t)!.msg), total };
  }

  open(filter: string): RetainedCursor {
    const wild = filter.includes('+') || filter.includes('#');
    return new RetainedCursor(filter, this.seq, wild ? this.byTopic.entries() : null);
  }

  /** The next page of `cursor`'s messages (empty and done at the end). */
  page(cursor: RetainedCursor, now: number): WireMessage[] {
    const out: WireMessage[] = [];
    if (cursor.done) return out;
    if (!cursor.iter) {
      cursor.done = true;
      const e = this.byTopic.get(cursor.filter);
      if (e && e.seq <= cursor.startSeq) this.keepIfLive(cursor.filter, e.msg, now, out);
      return out;
    }
    let bytes = 0;
    for (let scanned = 0; scanned < SCAN_PER_PAGE; scanned++) {
      const r = cursor.iter.next();
      if (r.done) { cursor.done = true; break; }
      const [topic, e] = r.value;
      if (e.seq > cursor.startSeq || !topicMatches(cursor.filter, topic)) continue;
      if (!this.keepIfLive(topic, e.msg, now, out)) continue;
      bytes += e.msg.payload.byteLength;
      if (out.length >= PAGE_MESSAGES || bytes >= PAGE_BYTES) break;
    }
    return out;
  }

  private keepIfLive(topic: string, m: WireMessage, now: number, out: WireMessage[]): boolean {
    if (m.expiryAt !== 0 && m.expiryAt <= now) { this.byTopic.delete(topic); return false; }
    out.push(m);
    return true;
  }
}

/**
 * The open cursors of every worker, by id. A cursor lives while its subscription's feed has
 * messages left; a worker that dies takes its cursors with it.
 */
export class RetainedCursors {
  private readonly open = new Map<number, { worker: number; cursor: RetainedCursor }>();
  private nextId = 1;

  constructor(private readonly store: RetainedStore) {}

  /** Opens a cursor and reads its first page; `cursor` is 0 when that page was the last. */
  first(worker: number, filter: string, now: number): { cursor: number; msgs: WireMessage[] } {
    const cursor = this.store.open(filter);
    const msgs = this.store.page(cursor, now);
    if (cursor.done) return { cursor: 0, msgs };
    const id = this.nextId++;
    this.open.set(id, { worker, cursor });
    return { cursor: id, msgs };
  }

  /** The next page; `cursor` is 0 once the cursor is exhausted (and closed) or if it is unknown. */
  next(worker: number, id: number, now: number): { cursor: number; msgs: WireMessage[] } {
    const c = this.open.get(id);
    if (!c || c.worker !== worker) return { cursor: 0, msgs: [] };
    const msgs = this.store.page(c.cursor, now);
    if (!c.cursor.done) return { cursor: id, msgs };
    this.open.delete(id);
    return { cursor: 0, msgs };
  }

  close(worker: number, id: number): void {
    if (this.open.get(id)?.worker === worker) this.open.delete(id);
  }

  workerDied(worker: number): void {
    for (const [id, c] of this.open) if (c.worker === worker) this.open.delete(id);
  }

  get size(): number { return this.open.size; }
}
