// A worker's context: its connections and sessions, the router, the coordinator link, and
// the turn scheduler that coalesces output (DESIGN.md §2.9).
import * as net from 'node:net';
import type { WorkerWiring } from '../src/shared/wiring';
import type { BrokerConfig } from '../src/config';
import { RingConsumer, BellWaiter } from '../src/shared/ring';
import { topicIndex, subscriberId, OPT_PERSISTENT } from '../src/shared/topic-index';
import * as K from '../src/shared/counters';
import type { WireSession, RestoredSession } from '../src/shared/messages';
import type { StoredSession } from '../src/store/types';
import { propsToStore } from '../src/shared/props-codec';
import { Persister } from './persist/persister';
import { StoreLink } from './persist/store-link';
import { StoreIds } from '../src/shared/store-ids';
import { Connection, ConnState } from './net/connection';
import { dispatch } from './handlers/dispatch';
import { Router } from './routing/router';
import { CoordinatorClient } from './coordination/coordinator-client';
import { Session, NEVER_EXPIRES } from './session/session';
import { SessionTable } from './session/session-table';
import type { Will } from './session/will';
import { Message, detached } from './protocol/message';
import { RC } from './protocol/constants';
import { native } from '../src/native';

/** Records drained per ring per turn, so sockets get their turn under load. */
const DRAIN_MAX = 2048;
/** A connection must send CONNECT within this time [MQTT-3.1.4? server may close]. */
const CONNECT_TIMEOUT_MS = 10_000;

export class Hub {
  readonly index: number;
  readonly config: BrokerConfig;
  readonly trieId: number;
  readonly sessions = new SessionTable();
  readonly connections = new Set<Connection>();
  readonly router: Router;
  readonly coord: CoordinatorClient;
  readonly persister: Persister;
  readonly storeIds: StoreIds;
  private readonly counters: Float64Array;
  private readonly accept: RingConsumer;
  private readonly bell: BellWaiter;
  private readonly dirty: Connection[] = [];
  private turnScheduled = false;
  private readonly created = new WeakMap<Connection, number>();
  stopping = false;
  /** Set by the entry point: every restored session of this worker is in place. */
  onAdoptDone: (() => void) | null = null;
  /**
   * Wills that fell due while the broker was down wait until every worker has restored its
   * sessions (the main thread says 'go'), so restored subscribers on other workers get them.
   */
  private started = false;
  private readonly dueAtStart: Array<() => void> = [];

  go(): void {
    this.started = true;
    for (const fn of this.dueAtStart.splice(0)) fn();
  }

  private whenStarted(fn: () => void): void {
    if (this.started) fn();
    else this.dueAtStart.push(fn);
  }

  constructor(readonly wiring: WorkerWiring) {
    this.index = wiring.index;
    this.config = wiring.config;
    this.trieId = wiring.trieId;
    this.counters = new Float64Array(wiring.counters, wiring.index * K.COUNTERS_PER_WORKER * 8, K.COUNTERS_PER_WORKER);
    this.router = new Router(this, wiring.outbound, wiring.inbound, wiring.bells);
    this.coord = new CoordinatorClient(wiring.coordinator, (req, id, clean) => this.release(req, id, clean),
      (s) => this.adoptSession(s), (req, results, error) => this.persister.onStored(req, results, error),
      (fd, bytes) => this.adoptMovedConnection(fd, bytes), () => this.onAdoptDone?.());
    const link = wiring.config.durability !== 'none' ? new StoreLink(wiring.storeRing, wiring.coordBell) : null;
    this.persister = new Persister(link, () => this.scheduleTurn(), wiring.config.commitLingerMs,
      (c, n) => this.count(c, n));
    this.storeIds = new StoreIds(wiring.storeIds);
    this.accept = new RingConsumer(wiring.acceptRing);
    this.bell = new BellWaiter(wiring.bell);
  }

  get now(): number { return Date.now(); }

  count(c: number, n: number): void { this.counters[c] += n; }

  /**
   * Nothing a client sends may throw into the event loop (it would take down every connection
   * of this worker): a packet that makes a handler throw closes that connection alone.
   */
  dispatch(c: Connection, first: number, buf: Buffer, frameStart: number, start: number, end: number): void {
    try {
      dispatch(c, first, buf, frameStart, start, end);
    } catch (err) {
      this.count(K.C_HANDLER_ERRORS, 1);
      if (this.handlerErrorsLogged++ < 10) process.stderr.write(`fleetmq: worker ${this.index}: closing ${c.clientId || 'a client'}: ${(err as Error).stack ?? err}\n`);
      c.protocolClose(RC.IMPLEMENTATION_SPECIFIC_ERROR);
    }
  }

  private handlerErrorsLogged = 0;

  // ---- turn scheduling -------------------------------------------------------------

  markDirty(c: Connection): void {
    this.dirty.push(c);
    this.scheduleTurn();
  }

  markRingDirty(): void { this.scheduleTurn(); }

  private scheduleTurn(): void {
    if (this.turnScheduled) return;
    this.turnScheduled = true;
    setImmediate(() => this.turn());
  }

  /** Once per loop turn: match what is still batched, write each dirty socket once, publish ring tails. */
  private turn(): void {
    this.turnScheduled = false;
    this.router.flushBatch();
    const d = this.dirty;
    for (let i = 0; i < d.length; i++) d[i].flush();
    d.length = 0;
    this.router.commitRings();
    this.persister.flush();
    this.storeIds.endTurn();
  }

  // ---- inbound rings ---------------------------------------------------------------

  /** Drains the accept ring and the peer rings; parks on the doorbell when all are empty. */
  pump(): void {
    if (this.stopping) return;
    let n = this.accept.drain((_d, view, off) => this.adoptFd(view.getInt32(off, true)), DRAIN_MAX);
    n += this.router.drainPeers(DRAIN_MAX);
    // Records that spilled from a full ring are retried at commit, once per turn.
    if (this.router.hasOverflow()) this.markRingDirty();
    if (n > 0 || this.router.hasInbound()) {
      setImmediate(() => this.pump());
      return;
    }
    this.bell.park(() => !this.accept.isEmpty() || this.router.hasInbound(), () => this.pump());
  }

  private adoptFd(fd: number): Connection | null {
    this.count(K.C_ACCEPTED, 1);
    this.count(K.C_CONNECTIONS_TOTAL, 1);
    let socket: net.Socket;
    try {
      socket = new net.Socket({ fd, readable: true, writable: true });
    } catch {
      return null;
    }
    socket.setNoDelay(true);
    const c = new Connection(socket, this);
    this.connections.add(c);
    this.created.set(c, this.now);
    this.count(K.C_CONNECTIONS_OPEN, 1);
    if (this.stopping) c.close();
    return c;
  }

  // ---- sessions --------------------------------------------------------------------

  /** Claims the client id (taking the session over from wherever it is); true if a session was present. */
  /**
   * Claims the client id; resolves to whether a session was present, or null when the
   * connection was moved to the worker that owns the session.
   */
  async claimSession(c: Connection, clientId: string, clean: boolean, expiry: number): Promise<boolean | null> {
    const grant = await this.coord.claim(clientId, clean);
    if (grant.redirect !== undefined) { this.moveConnection(c, grant.redirect); return null; }
    if (grant.local) {
      const present = this.takeOverLocally(c, clientId, clean, expiry);
      if (present !== null) return present;
    }
    return this.newSession(c, clientId, expiry);
  }

  /**
   * A persistent session lives on the worker that has it; a reconnecting client's connection
   * goes there (DESIGN.md §4) instead of the session coming here, so its subscriptions never
   * leave the trie and no message published meanwhile is missed.
   */
  private moveConnection(c: Connection, owner: number): void {
    const fd = (c.socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
    const bytes = c.takeReplayBytes();
    if (typeof fd !== 'number' || fd < 0) { c.close(); return; }
    let copy: number;
    try { copy = native.dupFd(fd); } catch { c.close(); return; }
    c.detachSocket();
    this.coord.move(owner, copy, bytes);
  }

  /** A connection another worker moved here, with the bytes it had already read. */
  adoptMovedConnection(fd: number, bytes: Uint8Array): void {
    const c = this.adoptFd(fd);
    c?.inject(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  }

  /** This worker owns the session already: the new connection replaces the old one [MQTT-3.1.4-3]. */
  private takeOverLocally(c: Connection, clientId: string, clean: boolean, expiry: number): boolean | null {
    const s = this.sessions.byClientId.get(clientId);
    if (!s) return null;
    const old = s.conn;
    // A session with expiry 0 lasts only as long as its connection [MQTT-3.1.2-6, MQTT5-3.1.2-23]:
    // taken over, it ends, even when the new connection asks to continue.
    const ends = clean || s.expiryInterval === 0;
    if (old && old !== c) {
      old.session = null;
      s.conn = null;
      this.count(K.C_CLIENTS_CONNECTED, -1);
      if (old.will && !old.normalDisconnect && (ends || old.will.delay === 0)) this.publishWill(old.will);
      old.protocolClose(RC.SESSION_TAKEN_OVER);
    } else if (s.pendingWill && ends) {
      this.publishWill(s.pendingWill);
    }
    s.cancelTimers();
    if (ends) { this.dropSession(s); this.persister.op({ o: 'delSession', clientId }); return null; }
    s.expiryInterval = expiry;
    s.protocolVersion = c.version;
    this.setPersistent(s, this.persister.enabled && expiry > 0);
    if (s.persistent) this.persister.op({ o: 'session', session: this.storedSession(s, c.will, null) });
    c.session = s;
    if (c.state === ConnState.CLOSED) { c.session = null; this.goOffline(s, null); }
    return true;
  }

  /** Persistence can change on reconnect (a new expiry): trie options, binding and store follow. */
  private setPersistent(s: Session, on: boolean): void {
    if (s.persistent === on) return;
    s.persistent = on;
    if (on) this.persister.op({ o: 'bind', clientId: s.clientId, sub: s.subscriber });
    else { this.persister.op({ o: 'unbind', sub: s.subscriber }); this.persister.op({ o: 'delSession', clientId: s.clientId }); }
    for (const [filter, sub] of s.subs) {
      topicIndex.subscribe(this.trieId, filter, s.subscriber, sub.opts | (on ? OPT_PERSISTENT : 0), sub.subId);
      if (on) this.storeSubscription(s, filter, sub.opts, sub.subId, sub.retainHandling);
    }
  }

  private newSession(c: Connection, clientId: string, expiry: number): boolean {
    const slot = this.sessions.allocSlot();
    const s = new Session(this, clientId, slot, subscriberId(this.index, slot), c.version);
    s.expiryInterval = expiry;
    s.persistent = this.persister.enabled && expiry > 0;
    this.sessions.add(s);
    this.count(K.C_SESSIONS, 1);
    // Whatever the store held under this id is replaced: a clean start or a new session.
    this.persister.op({ o: 'delSession', clientId });
    if (s.persistent) {
      this.persister.op({ o: 'session', session: this.storedSession(s, c.will, null) });
      this.persister.op({ o: 'bind', clientId, sub: s.subscriber });
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
    for (const sub of w.subscriptions) this.subscribe(s, sub.filter, sub.opts & ~OPT_PERSISTENT, sub.subId, sub.retainHandling);
  }

  /** The store's record of a session (its will travels with it, DESIGN.md §4). */
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
   * A session restored from the store at start (offline). Its expiry and will delay count
   * the time the broker was down [issue 4 "Restart"].
   */
  private adoptSession(r: RestoredSession): void {
    const slot = this.sessions.allocSlot();
    const s = new Session(this, r.clientId, slot, subscriberId(this.index, slot), r.protocolVersion);
    s.expiryInterval = r.expiryInterval;
    s.persistent = true;
    this.sessions.add(s);
    this.count(K.C_SESSIONS, 1);
    this.persister.op({ o: 'bind', clientId: r.clientId, sub: s.subscriber });
    this.restore(s, r);
    const elapsed = Math.max(0, this.now - r.disconnectedAt);
    const will: Will | null = r.will ? { msg: Message.fromWire(r.will.msg), delay: r.will.delay, expiry: -1 } : null;
    if (s.expiryInterval !== NEVER_EXPIRES && elapsed >= s.expiryInterval * 1000) {
      this.endSession(s);
      if (will) this.whenStarted(() => this.publishWill(will));
      return;
    }
    s.detach(() => this.expire(s), elapsed);
    if (will) {
      if (elapsed >= Math.min(will.delay, s.expiryInterval) * 1000) this.whenStarted(() => this.publishStoredWill(s, will));
      else s.scheduleWill(will, (w) => this.publishStoredWill(s, w), elapsed);
    }
  }

  private expire(s: Session): void {
    if (s.pendingWill) { const w = s.pendingWill; s.cancelTimers(); this.publishWill(w); }
    this.endSession(s);
  }

  /** A will published while its session lives on: the store forgets it. */
  private publishStoredWill(s: Session, w: Will): void {
    this.publishWill(w);
    if (s.persistent && this.sessions.byClientId.get(s.clientId) === s) {
      this.persister.op({ o: 'session', session: this.storedSession(s, null, this.now) });
    }
  }

  sessionOnline(c: Connection): void {
    const s = c.session!;
    this.count(K.C_CLIENTS_CONNECTED, 1);
    s.resume(c);
  }

  connectionClosed(c: Connection): void {
    if (!this.connections.delete(c)) return;
    this.count(K.C_CONNECTIONS_OPEN, -1);
    const s = c.session;
    if (!s || s.conn !== c) return;
    c.session = null;
    this.count(K.C_CLIENTS_CONNECTED, -1);
    this.goOffline(s, c.normalDisconnect ? null : c.will);
  }

  /** Connection gone: the will goes out now, later (delay) or never; the session waits for its expiry. */
  private goOffline(s: Session, will: Will | null): void {
    if (s.expiryInterval === 0) {
      if (will) this.publishWill(will);
      this.endSession(s);
      return;
    }
    s.detach(() => this.expire(s));
    const delayed = will !== null && will.delay > 0;
    if (s.persistent) this.persister.op({ o: 'session', session: this.storedSession(s, delayed ? will : null, this.now) });
    if (will) {
      if (!delayed) this.publishWill(will);
      else s.scheduleWill(will, (w) => this.publishStoredWill(s, w));
    }
  }

  publishWill(will: Will): void {
    const m = will.msg;
    const expiryAt = will.expiry >= 0 ? this.now + will.expiry * 1000 : 0;
    this.router.publish(new Message(m.topic, m.payload, m.qos, m.retain, m.props, expiryAt, m.origin));
    this.router.flushBatch();
  }

  private dropSession(s: Session): void {
    if (s.persistent) this.persister.op({ o: 'unbind', sub: s.subscriber });
    for (const filter of s.subs.keys()) {
      this.coord.journal('unsub', s.subscriber, filter);
      topicIndex.unsubscribe(this.trieId, filter, s.subscriber);
    }
    this.count(K.C_SUBSCRIPTIONS, -s.subs.size);
    s.subs.clear();
    s.cancelTimers();
    s.end();
    this.sessions.remove(s);
    this.count(K.C_SESSIONS, -1);
  }

  private endSession(s: Session): void {
    this.dropSession(s);
    this.persister.op({ o: 'delSession', clientId: s.clientId });
    this.coord.ended(s.clientId);
  }

  /**
   * A clean start elsewhere ends this worker's session for the client id (a continuing session
   * never moves: its new connection is moved here instead, see moveConnection).
   */
  private release(req: number, clientId: string, clean: boolean): void {
    const s = this.sessions.byClientId.get(clientId);
    if (!s) { this.coord.released(req); return; }
    const c = s.conn;
    if (c) {
      c.session = null;
      s.conn = null;
      this.count(K.C_CLIENTS_CONNECTED, -1);
      // The old connection's will: published unless the session lives on within its delay.
      if (c.will && !c.normalDisconnect && (clean || c.will.delay === 0)) this.publishWill(c.will);
      c.protocolClose(RC.SESSION_TAKEN_OVER); // [MQTT-3.1.4-3]
    } else if (s.pendingWill && clean) {
      this.publishWill(s.pendingWill);
    }
    s.cancelTimers();
    this.dropSession(s);
    this.persister.flush(true); // all store ops of the old owner (held ones too) land before the new owner's
    this.coord.released(req);
  }

  subscribe(s: Session, filter: string, opts: number, subId: number, retainHandling: number): boolean {
    const existed = s.subs.has(filter);
    if (!existed) this.coord.journal('sub', s.subscriber, filter);
    topicIndex.subscribe(this.trieId, filter, s.subscriber, opts | (s.persistent ? OPT_PERSISTENT : 0), subId);
    s.subs.set(filter, { opts, subId, retainHandling });
    if (s.persistent) this.storeSubscription(s, filter, opts, subId, retainHandling);
    if (!existed) this.count(K.C_SUBSCRIPTIONS, 1);
    return !existed;
  }

  private storeSubscription(s: Session, filter: string, opts: number, subId: number, retainHandling: number): void {
    this.persister.op({ o: 'sub', sub: {
      clientId: s.clientId, filter, qos: (opts & 3) as 0 | 1 | 2, noLocal: (opts & 4) !== 0, retainAsPublished: (opts & 8) !== 0,
      retainHandling: retainHandling as 0 | 1 | 2, subscriptionIdentifier: subId,
    } });
  }

  unsubscribe(s: Session, filter: string): boolean {
    if (!s.subs.delete(filter)) return false;
    this.coord.journal('unsub', s.subscriber, filter);
    topicIndex.unsubscribe(this.trieId, filter, s.subscriber);
    if (s.persistent) this.persister.op({ o: 'unsub', clientId: s.clientId, filter });
    this.count(K.C_SUBSCRIPTIONS, -1);
    return true;
  }

  // ---- housekeeping ----------------------------------------------------------------

  /** Keep-alive: 1.5 × the negotiated interval without a packet closes [MQTT-3.1.2-22]. */
  sweep(): void {
    const now = this.now;
    for (const c of this.connections) {
      if (c.state === ConnState.CONNECTED) {
        if (c.keepaliveMs > 0 && now - c.lastRecv > c.keepaliveMs * 1.5) c.protocolClose(RC.KEEP_ALIVE_TIMEOUT);
      } else if (c.state === ConnState.NEW && now - (this.created.get(c) ?? now) > CONNECT_TIMEOUT_MS) {
        c.close();
      }
    }
  }

  testHook(_c: Connection, topic: Buffer): boolean {
    if (!this.wiring.testHooks || topic.toString() !== '$fleetmq/test/crash-worker') return false;
    setImmediate(() => { throw new Error(`test hook: worker ${this.index} crashes on purpose`); });
    return true;
  }

  /** SIGTERM path: v5 clients get DISCONNECT 0x8B, then every socket closes. */
  shutdown(done: () => void): void {
    this.stopping = true;
    const finish = done;
    // Held store writes go too: a clean stop leaves nothing to resend.
    done = () => { this.router.flushBatch(); this.persister.flush(true); finish(); };
    const open = [...this.connections];
    for (const c of open) c.protocolClose(RC.SERVER_SHUTTING_DOWN);
    const pending = new Set(open.filter((c) => !c.socket.closed));
    if (pending.size === 0) { done(); return; }
    const timer = setTimeout(done, 2000);
    for (const c of pending) {
      c.socket.once('close', () => { pending.delete(c); if (pending.size === 0) { clearTimeout(timer); done(); } });
    }
  }
}
