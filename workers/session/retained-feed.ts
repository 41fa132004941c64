// The retained messages a session's new subscriptions are owed [MQTT-3.3.1-9, MQTT5-3.3.1-9],
// read page by page from a coordinator cursor (src/coordinator/retained.ts) as the client
// drains them: the session takes the next message only when the socket is under its
// high-water mark and, for QoS >= 1, the in-flight window has room. So a reading subscriber
// gets every retained message, and one that stops reading holds at most two pages here,
// never copies of the whole retained set in its queue.
import type { WireMessage } from '../../src/shared/messages';
import type { RetainedPage } from '../coordination/coordinator-client';

/** Where pages come from: the coordinator's cursors (coordination/coordinator-client.ts). */
export interface RetainedSource {
  retained(filter: string, cursor: number): Promise<RetainedPage>;
  retainedClose(cursor: number): void;
}

/** One subscription's claim on the retained messages matching its filter. */
export interface RetainedWant { readonly filter: string; readonly qos: number; readonly subIds: number[] | null }

export class RetainedFeed {
  /** Subscriptions after the current one, in SUBSCRIBE order. */
  private readonly wants: RetainedWant[] = [];
  /** The subscription being fed; its messages are `page` (from `pos`) and then `next`. */
  want: RetainedWant | null = null;
  private page: WireMessage[] = [];
  private pos = 0;
  private next: WireMessage[] | null = null;
  /** The coordinator cursor with pages left for `want`; 0 before the first page and after the last. */
  private cursor = 0;
  private opened = false;
  private fetching = false;
  private closed = false;

  constructor(private readonly coord: RetainedSource, private readonly onPage: () => void) {}

  add(want: RetainedWant): void {
    this.wants.push(want);
    if (this.want === null) this.advance();
  }

  /** Nothing left to send, nothing left to fetch. */
  get finished(): boolean { return this.want === null; }

  /** The next retained message of `want`, still in place; null while its page is on the way (or at the end). */
  peek(): WireMessage | null {
    for (;;) {
      if (this.pos < this.page.length) {
        if (this.next === null && this.cursor !== 0 && !this.fetching && this.pos * 2 >= this.page.length) this.fetch();
        return this.page[this.pos];
      }
      if (this.next !== null) { this.page = this.next; this.next = null; this.pos = 0; continue; }
      if (this.fetching) return null;
      if (!this.opened || this.cursor !== 0) { this.fetch(); return null; }
      if (!this.advance()) return null;
    }
  }

  take(): void { this.pos++; }

  /** The session ended: the coordinator may forget the cursor. */
  close(): void {
    this.closed = true;
    if (this.cursor !== 0 && !this.fetching) this.coord.retainedClose(this.cursor);
    this.cursor = 0;
    this.want = null;
    this.wants.length = 0;
    this.page = [];
    this.next = null;
  }

  /** The current subscription is done: the next one starts (true if there is one). */
  private advance(): boolean {
    this.want = this.wants.shift() ?? null;
    this.page = [];
    this.pos = 0;
    this.cursor = 0;
    this.opened = false;
    return this.want !== null;
  }

  private fetch(): void {
    this.fetching = true;
    this.coord.retained(this.want!.filter, this.cursor).then((p) => this.arrived(p), () => { /* coordinator gone: shutting down */ });
  }

  private arrived(p: RetainedPage): void {
    this.fetching = false;
    if (this.closed) { if (p.cursor !== 0) this.coord.retainedClose(p.cursor); return; }
    this.opened = true;
    this.cursor = p.cursor;
    if (this.pos >= this.page.length) { this.page = p.msgs; this.pos = 0; } else this.next = p.msgs;
    this.onPage();
  }
}
