// A session's subscriptions in the three places they live: the session itself, the shared
// native trie (with OPT_PERSISTENT when the session is stored, so routing knows a delivery
// must be durable), and the store. The coordinator's journal hears of each change before the
// trie does, so a worker that dies leaves nothing in the trie it cannot remove.
import type { Session } from './session';
import type { StoreOp } from '../../src/shared/messages';
import { topicIndex, OPT_PERSISTENT } from '../../src/shared/topic-index';
import { C_SUBSCRIPTIONS } from '../../src/shared/counters';

export interface SubscriptionDeps {
  readonly trieId: number;
  count(counter: number, n: number): void;
  readonly store: { op(o: StoreOp): void };
  /** The coordinator's subscription journal. */
  journal(t: 'sub' | 'unsub', sub: number, filter: string): void;
}

export class Subscriptions {
  constructor(private readonly deps: SubscriptionDeps) {}

  /** True when `filter` is new for the session (Retain Handling 1 sends retained messages only then). */
  subscribe(s: Session, filter: string, opts: number, subId: number, retainHandling: number): boolean {
    const existed = s.subs.has(filter);
    if (!existed) this.deps.journal('sub', s.subscriber, filter);
    topicIndex.subscribe(this.deps.trieId, filter, s.subscriber, opts | (s.persistent ? OPT_PERSISTENT : 0), subId);
    s.subs.set(filter, { opts, subId, retainHandling });
    if (s.persistent) this.store(s, filter, opts, subId, retainHandling);
    if (!existed) this.deps.count(C_SUBSCRIPTIONS, 1);
    return !existed;
  }

  unsubscribe(s: Session, filter: string): boolean {
    if (!s.subs.delete(filter)) return false;
    this.deps.journal('unsub', s.subscriber, filter);
    topicIndex.unsubscribe(this.deps.trieId, filter, s.subscriber);
    if (s.persistent) this.deps.store.op({ o: 'unsub', clientId: s.clientId, filter });
    this.deps.count(C_SUBSCRIPTIONS, -1);
    return true;
  }

  /** The session became stored (or stopped being): the trie's options and the store follow. */
  persistenceChanged(s: Session): void {
    for (const [filter, sub] of s.subs) {
      topicIndex.subscribe(this.deps.trieId, filter, s.subscriber, sub.opts | (s.persistent ? OPT_PERSISTENT : 0), sub.subId);
      if (s.persistent) this.store(s, filter, sub.opts, sub.subId, sub.retainHandling);
    }
  }

  /** The session ends: every subscription leaves the trie (the store drops them with the session). */
  removeAll(s: Session): void {
    for (const filter of s.subs.keys()) {
      this.deps.journal('unsub', s.subscriber, filter);
      topicIndex.unsubscribe(this.deps.trieId, filter, s.subscriber);
    }
    this.deps.count(C_SUBSCRIPTIONS, -s.subs.size);
    s.subs.clear();
  }

  private store(s: Session, filter: string, opts: number, subId: number, retainHandling: number): void {
    this.deps.store.op({ o: 'sub', sub: {
      clientId: s.clientId, filter, qos: (opts & 3) as 0 | 1 | 2, noLocal: (opts & 4) !== 0, retainAsPublished: (opts & 8) !== 0,
      retainHandling: retainHandling as 0 | 1 | 2, subscriptionIdentifier: subId,
    } });
  }
}
