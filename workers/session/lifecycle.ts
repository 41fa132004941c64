// A session's life in this worker (workers/README.md, "Sessions"): claimed through the
// coordinator's registry on CONNECT, taken over by a new connection (here, or by moving the new
// connection to the worker that owns the session), restored from the store at start, online and
// offline, expired, released to a clean start elsewhere. Wills are published (by the function
// the worker gives) at the moment MQTT says: at once, after their delay, or never.
import { transportOf } from '../auth/auth-gate';
import type { Connection, Transport } from '../net/connection';
import { ConnState } from '../net/connection';
import type { Persister } from '../persist/persister';
import type { Grant } from '../coordination/coordinator-client';
import type { WireSession, RestoredSession, ConnOrigin, HandoverFromWorker, HandoverToWorker } from '../../src/shared/messages';
import type { StoredSession } from '../../src/store/types';
import type { Will } from './will';
import type { SessionTable } from './session-table';
import type { Subscriptions } from './subscriptions';
import { Session, NEVER_EXPIRES, type SessionEnv } from './session';
import { Message, detached } from '../protocol/message';
import { RC } from '../protocol/constants';
import { subscriberId, OPT_PERSISTENT } from '../../src/shared/topic-index';
import { propsToStore } from '../../src/shared/props-codec';
import { native } from '../../src/native';
import * as K from '../../src/shared/counters';

export interface LifecycleDeps {
  readonly index: number;
  readonly table: SessionTable;
  readonly subscriptions: Subscriptions;
  readonly persister: Persister;
  readonly sessionEnv: SessionEnv;
  count(counter: number, n: number): void;
  /** The coordinator's registry. */
  readonly registry: {
    claim(clientId: string, clean: boolean, done: (g: Grant) => void): void;
    released(req: number): void;
    /** Cross-node handover answers (src/cluster/handover.ts). */
    postHandover(m: HandoverFromWorker): void;
    ended(clientId: string): void;
    move(to: number, fd: number, bytes: Uint8Array, identity: string | null, origin: ConnOrigin | null): void;
  };
  publishWill(w: Will): void;
  /** Relays a TLS / WebSocket transport to another worker; returns the fd that worker adopts (net/relay.ts). */
  relay(t: Transport): number;
}

/** The cluster's client-id registry refused the claim (not a member now, or no answer in time). */
export class ClaimRefused extends Error {}

export class SessionLifecycle {
  /**
   * Wills that fell due while the broker was down wait until every worker has restored its
   * sessions (the main thread says 'go'), so restored subscribers on other workers get them.
   */
  private started = false;
  private readonly dueAtStart: Array<() => void> = [];

  constructor(private readonly deps: LifecycleDeps) {}

  go(): void {
    this.started = true;
    for (const fn of this.dueAtStart.splice(0)) fn();
  }

  private whenStarted(fn: () => void): void {
    if (this.started) fn();
    else this.dueAtStart.push(fn);
  }

  /**
   * Claims the client id; `done` gets whether a session was present, or null when the
   * connection was moved to the worker that owns the session, or the error (ClaimRefused: the
   * cluster could not settle it). Runs synchronously with the coordinator's answer.
   */
  claim(c: Connection, clientId: string, clean: boolean, expiry: number, done: (present: boolean | null, err: Error | null) => void): void {
    this.deps.registry.claim(clientId, clean, (grant) => {
      let present: boolean | null;
      try {
        if (grant.refused !== undefined) throw new ClaimRefused(grant.refused);
        if (grant.redirect !== undefined) { this.moveConnection(c, grant.redirect); present = null; }
        else if (grant.handover) present = this.handIn(c, grant.handover, expiry);
        else {
          present = grant.local ? this.takeOverLocally(c, clientId, clean, expiry) : null;
          if (present === null) present = this.newSession(c, clientId, expiry);
        }
      } catch (err) { done(null, err as Error); return; }
      done(present, null);
    });
  }

  /**
   * A persistent session lives on the worker that has it; a reconnecting client's connection
   * goes there instead of the session coming here, so its subscriptions never leave the trie
   * and no message published meanwhile is missed (moving sessions once lost QoS 1 messages).
   */
  private moveConnection(c: Connection, owner: number): void {
    const bytes = c.takeReplayBytes();
    // A TCP fd is counted open by its listener where it goes; a relay's end is not (its transport
    // stays counted here). The client's address goes along where the fd's own peer is not it.
    const origin: ConnOrigin = c.plain ? { listener: c.listener, peer: c.peer, ...(c.transport ? { transport: c.transport } : {}) } : { listener: -1, peer: c.address(), transport: transportOf(c) };
    let copy: number;
    if (c.plain) {
      const fd = (c.socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
      if (typeof fd !== 'number' || fd < 0) { c.close(); return; }
      try { copy = native.dupFd(fd); } catch { c.close(); return; }
      c.detachSocket();
    } else {
      // TLS / WebSocket state cannot leave this worker: it stays here and relays plain MQTT bytes
      // to the owner over a socket pair whose other end moves instead (net/relay.ts).
      if (c.state === ConnState.CLOSED) return;
      try { copy = this.deps.relay(c.socket); } catch { c.close(); return; }
      c.detachTransport();
      this.deps.count(K.C_RELAYED, 1);
    }
    this.deps.registry.move(owner, copy, bytes, c.identity, origin);
  }

  /** This worker owns the session already: the new connection replaces the old one [MQTT-3.1.4-3]. */
  private takeOverLocally(c: Connection, clientId: string, clean: boolean, expiry: number): boolean | null {
    const s = this.deps.table.byClientId.get(clientId);
    if (!s) return null;
    // A session with expiry 0 lasts only as long as its connection [MQTT-3.1.2-6, MQTT5-3.1.2-23]:
    // taken over, it ends, even when the new connection asks to continue.
    const ends = clean || s.expiryInterval === 0;
    this.disconnectOld(s, ends, c);
    s.cancelTimers();
    if (ends) { this.dropSession(s); this.deps.persister.op({ o: 'delSession', clientId }); return null; }
    s.expiryInterval = expiry;
    s.protocolVersion = c.version;
    this.setPersistent(s, this.deps.persister.enabled && expiry > 0);
    if (s.persistent) this.deps.persister.op({ o: 'session', session: this.storedSession(s, c.will, null) });
    c.session = s;
    if (c.state === ConnState.CLOSED) { c.session = null; this.goOffline(s, null); }
    return true;
  }

  /**
   * The session's old connection, if any, closes with 0x8E [MQTT5-3.1.4-3]; its will is published
   * unless the session lives on within the will's delay [MQTT5-3.1.2-8]. An offline session's
   * pending will goes out if the session ends now.
   */
  private disconnectOld(s: Session, ends: boolean, by: Connection | null): void {
    const old = s.conn;
    if (old && old !== by) {
      old.session = null;
      s.conn = null;
      this.deps.count(K.C_CLIENTS_CONNECTED, -1);
      if (old.will && !old.normalDisconnect && (ends || old.will.delay === 0)) this.deps.publishWill(old.will);
      old.protocolClose(RC.SESSION_TAKEN_OVER);
    } else if (s.pendingWill && ends) {
      this.deps.publishWill(s.pendingWill);
    }
  }

  /** Persistence can change on reconnect (a new expiry): binding, store and trie options follow. */
  private setPersistent(s: Session, on: boolean): void {
    if (s.persistent === on) return;
    s.persistent = on;
    const p = this.deps.persister;
    if (on) p.op({ o: 'bind', clientId: s.clientId, sub: s.subscriber });
    else { p.op({ o: 'unbind', sub: s.subscriber }); p.op({ o: 'delSession', clientId: s.clientId }); }
    this.deps.subscriptions.persistenceChanged(s);
  }

  private create(clientId: string, protocolVersion: number, expiry: number, persistent: boolean): Session {
    const { table, index } = this.deps;
    const slot = table.allocSlot();
    const s = new Session(this.deps.sessionEnv, clientId, slot, subscriberId(index, slot), protocolVersion);
    s.expiryInterval = expiry;
    s.persistent = persistent;
    table.add(s);
    this.deps.count(K.C_SESSIONS, 1);
    return s;
  }

  private newSession(c: Connection, clientId: string, expiry: number): boolean {
    const p = this.deps.persister;
    const s = this.create(clientId, c.version, expiry, p.enabled && expiry > 0);
    // Whatever the store held under this id is replaced: a clean start or a new session.
    p.op({ o: 'delSession', clientId });
    if (s.persistent) {
      p.op({ o: 'session', session: this.storedSession(s, c.will, null) });
      p.op({ o: 'bind', clientId, sub: s.subscriber });
    }
    c.session = s;
    if (c.state === ConnState.CLOSED) {
      // The client left while the claim was in flight: the session starts offline.
      c.session = null;
      this.goOffline(s, null);
    }
    return false;
  }

  private restore(s: Session, w: WireSession): void {
    s.restore(w);
    for (const sub of w.subscriptions) this.deps.subscriptions.subscribe(s, sub.filter, sub.opts & ~OPT_PERSISTENT, sub.subId, sub.retainHandling);
  }

  /** The store's record of a session (its will travels with it). */
  private storedSession(s: Session, will: Will | null, disconnectedAt: number | null): StoredSession {
    return {
      clientId: s.clientId,
      protocolVersion: s.protocolVersion as 3 | 4 | 5,
      sessionExpiryInterval: s.expiryInterval,
      disconnectedAt,
      will: will ? {
        topic: will.msg.topicString, payload: detached(will.msg.payload), qos: will.msg.qos as 0 | 1 | 2, retain: will.msg.retain,
        properties: { ...propsToStore(will.msg.props, 0), ...(will.expiry >= 0 ? { messageExpiryInterval: will.expiry } : {}) },
        delayInterval: will.delay,
      } : null,
    };
  }

  /**
   * A session restored from the store at start (offline). Its expiry and will delay count the
   * time the broker was down.
   */
  adopt(r: RestoredSession): void {
    const s = this.create(r.clientId, r.protocolVersion, r.expiryInterval, true);
    this.deps.persister.op({ o: 'bind', clientId: r.clientId, sub: s.subscriber });
    this.restore(s, r);
    const elapsed = Math.max(0, Date.now() - r.disconnectedAt);
    // The store keeps no username: a restored will is checked by the ACL as its client id, anonymously (session/will.ts).
    const will: Will | null = r.will ? { msg: Message.fromWire(r.will.msg), delay: r.will.delay, expiry: -1, writer: { clientId: r.clientId, username: null } } : null;
    if (s.expiryInterval !== NEVER_EXPIRES && elapsed >= s.expiryInterval * 1000) {
      this.endSession(s);
      if (will) this.whenStarted(() => this.deps.publishWill(will));
      return;
    }
    s.detach(() => this.expire(s), elapsed);
    if (will) {
      if (elapsed >= Math.min(will.delay, s.expiryInterval) * 1000) this.whenStarted(() => this.publishStoredWill(s, will));
      else s.scheduleWill(will, (w) => this.publishStoredWill(s, w), elapsed);
    }
  }

  private expire(s: Session): void {
    if (s.pendingWill) { const w = s.pendingWill; s.cancelTimers(); this.deps.publishWill(w); }
    this.endSession(s);
  }

  /** A will published while its session lives on: the store forgets it. */
  private publishStoredWill(s: Session, w: Will): void {
    this.deps.publishWill(w);
    if (s.persistent && this.deps.table.byClientId.get(s.clientId) === s) {
      this.deps.persister.op({ o: 'session', session: this.storedSession(s, null, Date.now()) });
    }
  }

  /** CONNACK sent: the session resends what is in flight and sends what waits. */
  online(c: Connection): void {
    this.deps.count(K.C_CLIENTS_CONNECTED, 1);
    c.session!.resume(c);
    c.acl?.attach(c.session!); // after the resends and the queue had their go (auth/acl-gate.ts, WholeReads)
  }

  /** The connection closed: its session goes offline (or ends). */
  connectionClosed(c: Connection): void {
    const s = c.session;
    if (!s || s.conn !== c) return;
    c.session = null;
    this.deps.count(K.C_CLIENTS_CONNECTED, -1);
    this.goOffline(s, c.normalDisconnect ? null : c.will);
  }

  /** Connection gone: the will goes out now, later (delay) or never; the session waits for its expiry. */
  private goOffline(s: Session, will: Will | null): void {
    if (s.expiryInterval === 0) {
      if (will) this.deps.publishWill(will);
      this.endSession(s);
      return;
    }
    s.detach(() => this.expire(s));
    const delayed = will !== null && will.delay > 0;
    if (s.persistent) this.deps.persister.op({ o: 'session', session: this.storedSession(s, delayed ? will : null, Date.now()) });
    if (will) {
      if (!delayed) this.deps.publishWill(will);
      else s.scheduleWill(will, (w) => this.publishStoredWill(s, w));
    }
  }

  private dropSession(s: Session): void {
    if (s.persistent) this.deps.persister.op({ o: 'unbind', sub: s.subscriber });
    this.deps.subscriptions.removeAll(s);
    s.cancelTimers();
    s.end();
    this.deps.table.remove(s);
    this.deps.count(K.C_SESSIONS, -1);
  }

  private endSession(s: Session): void {
    this.dropSession(s);
    this.deps.persister.op({ o: 'delSession', clientId: s.clientId });
    this.deps.registry.ended(s.clientId);
  }

  /**
   * A clean start elsewhere ends this worker's session for the client id (a continuing session
   * never moves: its new connection is moved here instead, see moveConnection).
   */
  release(req: number, clientId: string, clean: boolean): void {
    const s = this.deps.table.byClientId.get(clientId);
    if (!s) { this.deps.registry.released(req); return; }
    this.disconnectOld(s, clean, null);
    s.cancelTimers();
    this.dropSession(s);
    // Ended, not moved: the store forgets it too (a cluster takeover leaves no copy here that a
    // restart could bring back; a local clean start rewrites the record anyway).
    if (clean) this.deps.persister.op({ o: 'delSession', clientId });
    this.deps.persister.flush(true); // all store ops of the old owner (held ones too) land before the new owner's
    this.deps.registry.released(req);
  }

  // ---- cross-node handover (src/cluster/handover.ts) ----

  /** Sessions of this worker in the middle of being handed to another node. */
  private readonly handingOut = new Set<Session>();

  handover(m: HandoverToWorker): void {
    if (m.t === 'handover-out') this.handOut(m.req, m.clientId);
    else if (m.t === 'handover-finish') this.handOutFinish(m.req, m.clientId, m.ok);
    else this.deps.table.byClientId.get(m.clientId)?.handoverRest(m.queue);
  }

  /**
   * Phase 1 on the old node: the connection closes with 0x8E [MQTT5-3.1.4-3]; its will goes out
   * now if its delay is 0, else never: the session is resumed on the new node within the delay
   * [MQTT5-3.1.2-8]. The session stays subscribed and offline, so what arrives meanwhile queues
   * here (bounded as any offline queue) and goes over in phase 2. A session that lasts only as
   * long as its connection is not handed over (null: it ends as on any takeover).
   */
  private handOut(req: number, clientId: string): void {
    const s = this.deps.table.byClientId.get(clientId);
    if (!s || s.expiryInterval === 0 || this.handingOut.has(s)) { this.deps.registry.postHandover({ t: 'handover-snap', req, session: null }); return; }
    this.disconnectOld(s, false, null);
    s.cancelTimers();
    this.handingOut.add(s);
    const session: WireSession = {
      clientId, protocolVersion: s.protocolVersion, expiryInterval: s.expiryInterval,
      subscriptions: [...s.subs].map(([filter, x]) => ({ filter, opts: x.opts, subId: x.subId, retainHandling: x.retainHandling })),
      inflight: s.exportInflight(), queue: [], inboundQos2: [...s.inboundQos2],
    };
    this.deps.registry.postHandover({ t: 'handover-snap', req, session });
  }

  /** Phase 2: the new node has the session: the queue goes to it and the session ends here (the store's copy too). */
  private handOutFinish(req: number, clientId: string, ok: boolean): void {
    const s = this.deps.table.byClientId.get(clientId);
    if (!s || !this.handingOut.delete(s)) { this.deps.registry.postHandover({ t: 'handover-queue', req, queue: [] }); return; }
    if (!ok) { s.detach(() => this.expire(s)); this.deps.registry.postHandover({ t: 'handover-queue', req, queue: [] }); return; }
    const queue = s.exportQueue();
    this.dropSession(s);
    this.deps.persister.op({ o: 'delSession', clientId });
    this.deps.persister.flush(true);
    this.deps.registry.postHandover({ t: 'handover-queue', req, queue });
  }

  /**
   * The new node's side: the session from the old node, with this CONNECT's expiry. Its
   * in-flight messages go again with DUP once the CONNACK is out (resume); its queue waits for
   * the old node's (handoverRest). Stored here with its subscriptions if persistent; its
   * in-flight and queued messages are not (README.md in src/cluster, "Session handover").
   */
  private handIn(c: Connection, w: WireSession, expiry: number): boolean {
    const p = this.deps.persister;
    const s = this.create(w.clientId, c.version, expiry, p.enabled && expiry > 0);
    p.op({ o: 'delSession', clientId: w.clientId });
    if (s.persistent) {
      p.op({ o: 'session', session: this.storedSession(s, c.will, null) });
      p.op({ o: 'bind', clientId: w.clientId, sub: s.subscriber });
    }
    this.restore(s, w);
    s.holdForHandover();
    this.deps.registry.postHandover({ t: 'handover-installed', clientId: w.clientId });
    c.session = s;
    if (c.state === ConnState.CLOSED) { c.session = null; this.goOffline(s, null); }
    return true;
  }
}
