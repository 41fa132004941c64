// Retained messages, one copy per process, in a trie by topic level, and the cursors that
// stream them to new subscriptions page by page, as fast as each subscriber drains them
// (workers/session/retained-feed.ts), so a SUBSCRIBE to `#` over 1M retained messages never
// copies them all into one session at once. A wildcard SUBSCRIBE walks only the branches its
// filter can match: time in proportion to the matches and the levels walked, not to the store.
//
// Memory: a leaf is its parent's Map entry, its level string and one latin1 string holding the
// message (retained-value.ts); a node object exists only where a topic has topics below it.
import type { WireMessage } from '../shared/messages';
import { decodePage, encodeRetained, expiryOf, payloadOffset, seqOf, withSeq, withStamp, type Stamp } from './retained-value';

/** A page holds at most this many messages ... */
export const PAGE_MESSAGES = 256;
/** ... and stops after the message that takes it past this many payload bytes. */
export const PAGE_BYTES = 256 * 1024;
/** Trie steps a cursor may take for one page before it answers (possibly empty-handed). */
const STEPS_PER_PAGE = 65536;

/**
 * A topic level with topics below it; `val` is its own retained message, if any. Its first
 * child is kept inline (`k1`, `c1`): most levels under a wide one (`devices/<id>/state`) have a
 * single child, and a Map costs ~180 bytes. A second child moves both into `kids`, for good.
 */
class TNode {
  k1: string | null = null;
  c1: Child | null = null;
  kids: Map<string, Child> | null = null;
  constructor(public val: string | null) {}

  get(k: string): Child | undefined {
    if (this.kids !== null) return this.kids.get(k);
    return this.k1 === k ? this.c1! : undefined;
  }

  /** Sets child `k`; `own` is the key to keep when `k` is new (see ownKey). */
  set(k: string, c: Child, own: () => string): void {
    if (this.kids !== null) { if (this.kids.has(k)) this.kids.set(k, c); else this.kids.set(own(), c); return; }
    if (this.k1 === k) { this.c1 = c; return; }
    if (this.k1 === null) { this.k1 = own(); this.c1 = c; return; }
    this.kids = new Map([[this.k1, this.c1!], [own(), c]]);
    this.k1 = null;
    this.c1 = null;
  }

  delete(k: string): void {
    if (this.kids !== null) this.kids.delete(k);
    else if (this.k1 === k) { this.k1 = null; this.c1 = null; }
  }

  get size(): number { return this.kids !== null ? this.kids.size : this.k1 !== null ? 1 : 0; }
}
/** A level with nothing below it is just its encoded message (no node object). */
type Child = TNode | string;

const valOf = (c: Child): string | null => (typeof c === 'string' ? c : c.val);

/**
 * A level string kept as a key. split() returns levels of 13 chars or more as slices of the
 * topic, which would keep the whole topic string alive behind each key: those are copied.
 */
const ownKey = (k: string): string => (k.length < 13 ? k : Buffer.from(k, 'utf8').toString('utf8'));

/**
 * Where a walk resumes: the children of one node, and which filter level they answer to. A
 * node with its children in a Map is walked with a live Map iterator (entries deleted meanwhile
 * are skipped, a key set again keeps its place). A node with one inline child is walked by that
 * child's key, looked up when the walk gets there: gone by then, it is skipped; moved into a Map
 * meanwhile, it is found there. Children added after a walk passed a node were set after the
 * cursor opened, so the walk has nothing to miss there.
 *
 * An unread Map iterator pins every table its Map is rehashed into meanwhile (V8 keeps the
 * chain for it: a 200K-entry Map churned 2M times held +111 MiB): a cursor left unread by a
 * stalled subscriber is moved on now and then (`touch`), its next keys kept in `ahead` and
 * looked up again when the walk gets to them.
 */
interface Frame {
  it: IterableIterator<[string, Child]> | null;
  node: TNode;
  /** Keys still to visit before the iterator (or, for an inline child, instead of one). */
  ahead: string[];
  fi: number;
  depth: number;
}

function frameOf(node: TNode, fi: number, depth: number): Frame | null {
  if (node.kids !== null) return node.kids.size > 0 ? { it: node.kids.entries(), node, ahead: [], fi, depth } : null;
  return node.k1 !== null ? { it: null, node, ahead: [node.k1], fi, depth } : null;
}

/** The next child of a frame, or null at its end. */
function nextOf(fr: Frame): [string, Child] | null {
  while (fr.ahead.length > 0) {
    const k = fr.ahead.shift()!;
    const c = fr.node.get(k);
    if (c !== undefined) return [k, c];
  }
  if (fr.it === null) return null;
  const r = fr.it.next();
  if (r.done) { fr.it = null; return null; }
  return r.value;
}

/** Moves each iterator of `cursor` onto its Map's current table (one key read ahead). */
function touch(cursor: RetainedCursor): void {
  for (const fr of cursor.frames) {
    if (fr.it === null) continue;
    const r = fr.it.next();
    if (r.done) fr.it = null;
    else fr.ahead.push(r.value[0]);
  }
}

/** Retained sets and clears between two touches of the open cursors. */
const TOUCH_EVERY = 65536;

/**
 * Where one subscription's retained messages are read from: a depth-first walk of the trie
 * along the filter, resumable between pages (a stack of frames, above). A message set after
 * the cursor opened (a newer seq) is skipped: the subscription is already in the trie then, so
 * it arrives as a live message, and sending it twice would let the older copy land last.
 */
export class RetainedCursor {
  done = false;
  started = false;
  readonly levels: string[];
  readonly frames: Frame[] = [];
  /** Topic levels of the node being visited, [0, depth). */
  readonly path: string[] = [];
  constructor(readonly filter: string, readonly startSeq: number) {
    this.levels = filter.split('/');
  }
}

/** Matches gathered for one page, decoded once the page is full. */
interface Hits { topics: string[]; values: string[]; bytes: number }

export class RetainedStore {
  private readonly root = new TNode(null);
  private seq = 0;
  private count = 0;
  /** Trie steps every cursor has taken (children looked at): what a SUBSCRIBE costs, for tests. */
  steps = 0;
  /** Cursors opened and not yet done or released. */
  private readonly live = new Set<RetainedCursor>();
  private churn = 0;

  /**
   * An empty payload clears the topic [MQTT-3.3.1-6]. O(levels). `stamp`: the set's cluster
   * stamp (a cluster member only, src/cluster/retained-sync.ts).
   */
  set(msg: WireMessage, stamp: Stamp | null = null): void {
    if (msg.payload.byteLength === 0) this.clear(msg.topic);
    else this.put(msg.topic.split('/'), encodeRetained(msg, ++this.seq, stamp));
    this.churned();
  }

  private churned(): void {
    if (++this.churn >= TOUCH_EVERY) {
      this.churn = 0;
      for (const c of this.live) touch(c);
    }
  }

  /** Sets `topic` to an encoded message taken from a peer (given a set number of this store). */
  putEncoded(topic: string, v: string): void {
    this.put(topic.split('/'), withSeq(v, ++this.seq));
    this.churned();
  }

  /** The encoded message of `topic` (expired or not), or null. O(levels). */
  valueOf(topic: string): string | null {
    const levels = topic.split('/');
    let c: Child | undefined = this.root;
    for (const k of levels) {
      if (c === undefined || typeof c === 'string') return null;
      c = c.get(k);
    }
    return c === undefined ? null : valOf(c);
  }

  /** Gives `topic`'s message the cluster stamp read back from the store (same set number). */
  restamp(topic: string, stamp: Stamp): void {
    const v = this.valueOf(topic);
    if (v !== null) this.put(topic.split('/'), withStamp(v, stamp));
  }

  /**
   * The next page of a cursor as encoded messages (for a peer's snapshot): what `page` would
   * decode. Expired messages are left out (and cleared) as there.
   */
  encodedPage(cursor: RetainedCursor, now: number): { topics: string[]; values: string[] } {
    const hits = this.pageHits(cursor, now);
    return { topics: hits.topics, values: hits.values };
  }

  get size(): number { return this.count; }

  /** The admin API's read of one topic (an expired message is dropped, as a cursor would). */
  get(topic: string, now: number): WireMessage | null {
    const c = this.open(topic);
    const msgs = this.page(c, now);
    this.release(c);
    return msgs.find((m) => m.topic === topic) ?? null;
  }

  /**
   * The admin API's list: messages on topics matching `filter`, sorted by topic, the first
   * `limit` after `after` (keyset paging), and how many match in all. Walks the filter's
   * matches through a cursor (not the whole store), then sorts what is after `after`.
   */
  list(filter: string, after: string, limit: number, now: number): { messages: WireMessage[]; total: number } {
    const c = this.open(filter);
    const kept: WireMessage[] = [];
    let total = 0;
    while (!c.done) {
      for (const m of this.page(c, now)) {
        total++;
        if (m.topic > after) kept.push(m);
      }
    }
    this.release(c);
    kept.sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : 0));
    return { messages: kept.slice(0, limit), total };
  }

  private put(levels: string[], v: string): void {
    let node = this.root;
    const last = levels.length - 1;
    for (let i = 0; i < last; i++) {
      const k = levels[i];
      const c = node.get(k);
      let next: TNode;
      if (c === undefined) { next = new TNode(null); node.set(k, next, () => ownKey(k)); }
      // A leaf gains topics below it: it becomes a node, in place (Map order kept for cursors).
      else if (typeof c === 'string') { next = new TNode(c); node.set(k, next, () => k); }
      else next = c;
      node = next;
    }
    const k = levels[last];
    const c = node.get(k);
    if (c === undefined) { this.count++; node.set(k, v, () => ownKey(k)); }
    else if (typeof c === 'string') node.set(k, v, () => k);
    else { if (c.val === null) this.count++; c.val = v; }
  }

  /** Removes `topic`'s message and the nodes left empty above it. O(levels). */
  clear(topic: string): void {
    const levels = topic.split('/');
    const nodes: TNode[] = [this.root];
    for (let i = 0; i < levels.length - 1; i++) {
      const c = nodes[i].get(levels[i]);
      if (c === undefined || typeof c === 'string') return;
      nodes.push(c);
    }
    let i = levels.length - 1;
    const parent = nodes[i];
    const c = parent.get(levels[i]);
    if (c === undefined) return;
    if (typeof c === 'string') parent.delete(levels[i]);
    else if (c.val === null) return;
    else if (c.size === 0) parent.delete(levels[i]);
    else { c.val = null; this.count--; return; }
    this.count--;
    // Prune upwards: a node with no children left goes, or shrinks back to its message.
    for (; i > 0 && nodes[i].size === 0; i--) {
      const n = nodes[i];
      const up = nodes[i - 1];
      const k = levels[i - 1];
      if (n.val === null) up.delete(k);
      else { const v = n.val; up.set(k, v, () => k); break; }
    }
  }

  /** A cursor over `filter`'s messages as they are now; `release` it if it is dropped before the end. */
  open(filter: string): RetainedCursor {
    const c = new RetainedCursor(filter, this.seq);
    this.live.add(c);
    return c;
  }

  release(cursor: RetainedCursor): void {
    this.live.delete(cursor);
  }

  /** Cursors opened, not yet at their end nor released. */
  get openCursors(): number { return this.live.size; }

  /** The next page of `cursor`'s messages (empty and done at the end). */
  page(cursor: RetainedCursor, now: number): WireMessage[] {
    const hits = this.pageHits(cursor, now);
    return decodePage(hits.topics, hits.values);
  }

  private pageHits(cursor: RetainedCursor, now: number): Hits {
    const hits: Hits = { topics: [], values: [], bytes: 0 };
    if (cursor.done) return hits;
    if (!cursor.started) {
      cursor.started = true;
      this.visit(cursor, this.root, 0, 0, hits, now);
    }
    const { frames, path, levels } = cursor;
    for (let steps = 0; hits.values.length < PAGE_MESSAGES && hits.bytes < PAGE_BYTES && steps < STEPS_PER_PAGE; steps++) {
      const fr = frames[frames.length - 1];
      if (fr === undefined) break;
      const e = nextOf(fr);
      if (e === null) { frames.pop(); continue; }
      this.steps++;
      const [key, child] = e;
      // Frames exist only for wildcards: at the first level, a wildcard skips `$` topics [MQTT-4.7.2-1].
      if (fr.depth === 0 && key.charCodeAt(0) === 36 /* $ */) continue;
      path[fr.depth] = key;
      this.visit(cursor, child, levels[fr.fi] === '#' ? fr.fi : fr.fi + 1, fr.depth + 1, hits, now);
    }
    if (frames.length === 0) { cursor.done = true; this.live.delete(cursor); }
    return hits;
  }

  /**
   * `c` (at `depth`, its topic in `cursor.path`) matched the filter up to level `fi`: takes its
   * message if the filter ends here or at a `#`, and leaves a frame for its children where a
   * wildcard continues. Literal levels are followed at once (one Map lookup each).
   */
  private visit(cursor: RetainedCursor, c: Child, fi: number, depth: number, hits: Hits, now: number): void {
    const { levels, path } = cursor;
    for (;;) {
      const val = valOf(c);
      const node = typeof c === 'string' ? null : c;
      if (fi === levels.length) { if (val !== null) this.hit(cursor, depth, val, hits, now); return; }
      const tok = levels[fi];
      if (tok === '#') {
        // `sport/#` matches `sport` too [MQTT-4.7.1-2] (the root holds no message).
        if (val !== null) this.hit(cursor, depth, val, hits, now);
        const fr = node && frameOf(node, fi, depth);
        if (fr) cursor.frames.push(fr);
        return;
      }
      if (tok === '+') {
        const fr = node && frameOf(node, fi, depth);
        if (fr) cursor.frames.push(fr);
        return;
      }
      const next = node?.get(tok);
      if (next === undefined) return;
      path[depth] = tok;
      c = next;
      fi++;
      depth++;
    }
  }

  private hit(cursor: RetainedCursor, depth: number, v: string, hits: Hits, now: number): void {
    if (seqOf(v) > cursor.startSeq) return;
    const topic = cursor.path.slice(0, depth).join('/');
    const exp = expiryOf(v);
    if (exp !== 0 && exp <= now) { this.clear(topic); return; }
    hits.topics.push(topic);
    hits.values.push(v);
    hits.bytes += v.length - payloadOffset(v);
  }
}

/**
 * The open cursors of every worker, by id. A cursor lives while its subscription's feed has
 * messages left; a session feeds one subscription at a time and closes its cursor when it
 * ends, and a worker that dies takes its cursors with it: at most one cursor per session.
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
    const c = this.open.get(id);
    if (c?.worker !== worker) return;
    this.open.delete(id);
    this.store.release(c.cursor);
  }

  workerDied(worker: number): void {
    for (const [id, c] of this.open) if (c.worker === worker) { this.open.delete(id); this.store.release(c.cursor); }
  }

  get size(): number { return this.open.size; }
}
