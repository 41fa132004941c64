// The worker's side of the admin API (src/http/api.ts) and of the banned list: answers the main
// thread's queries about the clients and sessions this worker holds, kicks, publishes, and
// keeps the BanMatcher the CONNECT handler checks (src/shared/banned.ts). Runs on the main
// thread's request only, never on the message path.
import type { Connection } from '../net/connection';
import { ConnState } from '../net/connection';
import type { SessionTable } from '../session/session-table';
import type { Session } from '../session/session';
import { Message, NO_ORIGIN } from '../protocol/message';
import { encodeProps } from '../protocol/properties';
import { RC } from '../protocol/constants';
import { BanMatcher, type BanEntry } from '../../src/shared/banned';
import { OPT_QOS_MASK, OPT_NO_LOCAL, OPT_RETAIN_AS_PUBLISHED } from '../../src/shared/topic-index';
import { C_KICKED, C_BANNED_DISCONNECTED } from '../../src/shared/counters';
import type { ClientInfo, PublishProps, SubscriptionInfo, WorkerAnswer, WorkerQuery } from '../../src/shared/admin-messages';

export interface AdminEnv {
  readonly index: number;
  readonly table: SessionTable;
  readonly connections: ReadonlySet<Connection>;
  count(counter: number, n: number): void;
  /** The publish path, as a will is published. */
  publish(msg: Message): void;
}

export class WorkerAdmin {
  /** Checked by every CONNECT (handlers/connect.ts). */
  banned = new BanMatcher();

  constructor(private readonly env: AdminEnv) {}

  /** A new banned list: connected clients it names are disconnected, v5 with 0x98 "administrative action". */
  setBanned(entries: BanEntry[]): void {
    this.banned = new BanMatcher(entries);
    const now = Date.now();
    let closed = 0;
    for (const c of [...this.env.connections]) {
      if (c.state !== ConnState.CONNECTED) continue;
      if (this.banned.match(c.clientId, c.username, c.socket.remoteAddress, now) === null) continue;
      c.protocolClose(RC.ADMINISTRATIVE_ACTION);
      closed++;
    }
    if (closed) this.env.count(C_BANNED_DISCONNECTED, closed);
  }

  answer(q: WorkerQuery): WorkerAnswer {
    switch (q.op) {
      case 'clients': return { op: 'clients', clients: this.clients(q) };
      case 'client': {
        const s = this.env.table.byClientId.get(q.clientId);
        return { op: 'client', client: s ? this.info(s) : null };
      }
      case 'kick': {
        const c = this.env.table.byClientId.get(q.clientId)?.conn;
        if (!c || c.state === ConnState.CLOSED) return { op: 'kick', kicked: false };
        this.env.count(C_KICKED, 1);
        c.protocolClose(RC.ADMINISTRATIVE_ACTION);
        return { op: 'kick', kicked: true };
      }
      case 'subscriptions': {
        const s = this.env.table.byClientId.get(q.clientId);
        if (!s) return { op: 'subscriptions', found: false, subscriptions: [] };
        const subs: SubscriptionInfo[] = [];
        for (const [filter, sub] of s.subs) {
          if (filter <= q.after) continue;
          subs.push({
            filter, qos: sub.opts & OPT_QOS_MASK, noLocal: (sub.opts & OPT_NO_LOCAL) !== 0,
            retainAsPublished: (sub.opts & OPT_RETAIN_AS_PUBLISHED) !== 0, retainHandling: sub.retainHandling, subscriptionId: sub.subId || null,
          });
        }
        subs.sort((a, b) => (a.filter < b.filter ? -1 : 1));
        return { op: 'subscriptions', found: true, subscriptions: subs.slice(0, q.limit) };
      }
      case 'publish': {
        const payload = Buffer.from(q.payload.buffer, q.payload.byteOffset, q.payload.byteLength);
        const expiry = q.props?.messageExpiryInterval;
        const msg = new Message(Buffer.from(q.topic, 'utf8'), payload, q.qos, q.retain, wireProps(q.props),
          typeof expiry === 'number' && expiry > 0 ? Date.now() + expiry * 1000 : 0, NO_ORIGIN);
        this.env.publish(msg);
        return { op: 'publish', ok: true };
      }
    }
  }

  /** Keyset paging: the first `limit` client ids after `after`, in order (the main thread merges the workers' pages). */
  private clients(q: Extract<WorkerQuery, { op: 'clients' }>): ClientInfo[] {
    const out: Session[] = [];
    for (const s of this.env.table.byClientId.values()) {
      const c = s.conn;
      if (!c || c.state !== ConnState.CONNECTED || s.clientId <= q.after) continue;
      if (q.clientId !== undefined && !s.clientId.startsWith(q.clientId)) continue;
      if (q.username !== undefined && c.username !== q.username) continue;
      if (q.address !== undefined && !(c.socket.remoteAddress ?? '').replace(/^::ffff:/, '').startsWith(q.address)) continue;
      out.push(s);
    }
    out.sort((a, b) => (a.clientId < b.clientId ? -1 : 1));
    return out.slice(0, q.limit).map((s) => this.info(s));
  }

  private info(s: Session): ClientInfo {
    const c = s.conn && s.conn.state === ConnState.CONNECTED ? s.conn : null;
    return {
      clientId: s.clientId,
      username: c?.username ?? null,
      address: c?.socket.remoteAddress?.replace(/^::ffff:/, '') ?? null,
      port: c?.socket.remotePort ?? null,
      protocolVersion: c?.version ?? s.protocolVersion,
      connected: c !== null,
      connectedAt: c ? c.connectedAt : null,
      keepalive: c ? c.keepaliveMs / 1000 : 0,
      subscriptions: s.subs.size,
      inflight: s.inflightCount,
      queued: s.queuedCount,
      sessionExpiryInterval: s.expiryInterval,
      worker: this.env.index,
    };
  }
}

/** The API's JSON properties in the form the PUBLISH path forwards (expiry travels as expiryAt). */
function wireProps(p: PublishProps | null): Buffer | null {
  if (!p) return null;
  const o: Record<string, unknown> = { ...p };
  delete o.messageExpiryInterval;
  if (typeof p.correlationData === 'string') o.correlationData = Buffer.from(p.correlationData, 'base64');
  return encodeProps(o);
}
