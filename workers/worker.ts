// Entry point of a serving worker thread, and the one place its parts are put together
// (workers/README.md has the map). Each part is given what it uses; only here do they meet.
import { parentPort, workerData } from 'node:worker_threads';
import type { Socket } from 'node:net';
import type { WorkerWiring, PeerReset } from '../src/shared/wiring';
import * as K from '../src/shared/counters';
import { StoreIds } from '../src/shared/store-ids';
import { Turn } from './turn';
import { Inbound } from './inbound';
import { installLogger, limitedLog } from '../src/log/thread';
import { ThreadLog, errFields } from '../src/log/thread-log';
import { DR } from '../src/shared/disconnect-reasons';
import * as G from '../src/shared/worker-gauges';
import { testHook } from './test-hooks';
import { DeadlineHeap } from './session/deadline-heap';
import { Connections } from './net/connections';
import { Transports } from './net/transports';
import { relay } from './net/relay';
import { Admission } from './net/admission';
import { OpenConnections } from '../src/shared/open-connections';
import { listenerSpecs, type TlsReload, type TlsReloaded, type LimitsReload } from '../src/shared/listeners';
import type { Connection } from './net/connection';
import { dispatch } from './handlers/dispatch';
import type { HandlerDeps } from './handlers/deps';
import { Router } from './routing/router';
import { Forwarder } from './cluster/forwarder';
import { subscriberSlot } from '../src/shared/topic-index';
import { LocalDelivery } from './routing/local-delivery';
import { PeerLinks } from './routing/peers';
import { Persister } from './persist/persister';
import { StoreLink } from './persist/store-link';
import { DurableRouting } from './persist/durable-routing';
import { SessionTable } from './session/session-table';
import { SessionLifecycle } from './session/lifecycle';
import { Subscriptions } from './session/subscriptions';
import { willMessage, type Will } from './session/will';
import { CoordinatorClient } from './coordination/coordinator-client';
import { startSysTopics } from './sys/sys-topics';
import { startHeartbeat } from '../src/shared/heartbeats';
import { AuthGate } from './auth/auth-gate';
import { AclGate } from './auth/acl-gate';
import { disarmExpiry } from './auth/token-expiry';
import type { Message } from './protocol/message';
import { RC } from './protocol/constants';
import { ClusterState } from '../src/shared/cluster-state';
import { WorkerAdmin } from './admin/admin';
import type { BannedUpdate } from '../src/shared/banned';
import type { AdminAsk, AdminReply, WorkerAnswer, WorkerQuery } from '../src/shared/admin-messages';

const wiring = workerData as WorkerWiring;
// Before anything logs: this thread's records go to the main thread's writer (src/log/).
installLogger(new ThreadLog(wiring.log));
const { index, config, trieId } = wiring;
const counters = new Float64Array(wiring.counters, index * K.COUNTERS_PER_WORKER * 8, K.COUNTERS_PER_WORKER);
const count = (counter: number, n: number): void => { counters[counter] += n; };
const open = new OpenConnections(wiring.open, listenerSpecs(config).length);

// The turn is scheduled by nearly every part; it runs what they left for it (turn.ts).
const schedule = (): void => turn.schedule();

const link = config.durability !== 'none' ? new StoreLink(wiring.storeRing, wiring.coordBell) : null;
const persister = new Persister(link, schedule, config.commitLingerMs, count);
const storeIds = new StoreIds(wiring.storeIds);
const table = new SessionTable();
const clusterState = new ClusterState(wiring.clusterState);

const coord = new CoordinatorClient(wiring.coordinator,
  (req, clientId, clean) => lifecycle.release(req, clientId, clean),
  (s) => lifecycle.adopt(s),
  (req, results, error) => persister.onStored(req, results, error),
  (fd, bytes, identity, origin) => {
    // A moved TCP fd counts open on its listener here now (the first worker counted it out).
    const listener = origin?.listener ?? -1;
    if (listener >= 0) open.add(index, listener, 1);
    const c = connections.adoptMoved(fd, bytes, identity, origin);
    if (c !== null) admission.track(c.socket as Socket, listener);
    else open.add(index, listener, -1);
  },
  // Ready once the coordinator has handed over this worker's restored sessions.
  () => parentPort!.postMessage({ t: 'ready' }),
  (m) => {
    // Fenced: the coordinator already raised the shared flag, so new CONNECTs are refused; the
    // clients here go to another node: DISCONNECT 0x9C "use another server" [MQTT5-3.14.2.1]
    // (not 0x8B: this node is back once it rejoins; v3 clients are just closed [MQTT-4.13.1-1]).
    if (m.t === 'cluster-fenced') count(K.C_CLUSTER_DROPPED, connections.dropAll(RC.USE_ANOTHER_SERVER));
    else sys?.cluster(m);
  });

// The publish path: routing, with persistence behind the Durability interface.
const local = new LocalDelivery(index, table);
const peers = new PeerLinks(wiring, local, count, schedule);
const retain = (msg: Message): void => { const w = msg.toWire(); coord.retain(w); persister.retain(w); };
// Cross-node forwarding, only in a cluster member (workers/cluster/forwarder.ts).
const forwarder = config.etcd !== undefined ? new Forwarder({
  index, port: coord.port, count,
  publish: (msg) => router.publish(msg),
  flush: () => { router.flushBatch(); schedule(); },
  clientIdOf: (sub) => { const s = table.get(subscriberSlot(sub)); return s !== undefined && s.subscriber === sub ? s.clientId : ''; },
}) : null;
if (forwarder) coord.onForward = (m) => forwarder.onMessage(m);
const router = new Router({ index, trieId, local, peers, retain, forwarder, schedule, count });
const durability = new DurableRouting({
  index, persister, storeIds, workers: wiring.outbound.length, count,
  connected: (w) => peers.connected(w),
  sendSettle: (to, msgId, ok) => peers.sendSettle(to, msgId, ok),
}, router);
router.bind(durability);
peers.bind(durability);

const turn = new Turn({
  before: () => router.flushBatch(),
  after: () => { peers.commit(); persister.flush(); storeIds.endTurn(); },
});

// Authorization (--acl-file): connections get their checker from it at CONNECT (handlers/connect.ts).
const acl = wiring.acl ? new AclGate(wiring.acl, wiring.auth, config.aclCacheEntries, count) : null;

// Sessions.
const subscriptions = new Subscriptions({ trieId, count, store: persister, journal: (t, sub, filter) => coord.journal(t, sub, filter) });
const publishWill = (will: Will): void => {
  // A will to a topic its client may not write is not published (counted), as its PUBLISH would not be.
  if (acl !== null) {
    const w = will.writer;
    if (!acl.forClient(w ? w.clientId : '', w ? w.username : null).mayWrite(will.msg.topicString)) { count(K.C_DROPPED_NOT_AUTHORISED, 1); return; }
  }
  router.publish(willMessage(will, Date.now()));
  router.flushBatch();
};
// Every session's offline expiry and will delay: one heap, one timer (session/deadline-heap.ts).
const deadlines = new DeadlineHeap((n) => count(K.C_SESSION_DEADLINES, n));
const lifecycle = new SessionLifecycle({
  index, table, subscriptions, persister, count, registry: coord, publishWill, relay,
  sessionEnv: { config, count, store: persister, retained: coord, deadlines },
});
coord.onHandover = (m) => lifecycle.handover(m);

// The admin API's queries and the banned list (admin/admin.ts).
const admin = new WorkerAdmin({
  index, table, count,
  get connections() { return connections.all; },
  publish: (msg) => { router.publish(msg); router.flushBatch(); },
});

// Connections and the packet handlers.
const handlers: HandlerDeps = {
  config, count, router, sessions: lifecycle, subscriptions, store: persister,
  auth: new AuthGate(wiring.auth, config, count),
  acl,
  banned: { match: (id, user, addr) => admin.banned.match(id, user, addr) },
  cluster: clusterState,
  testHook: wiring.testHooks ? (c, topic) => testHook(index, c, topic, { deadlines }) : () => false,
};
const connections = new Connections({
  config, count,
  dispatch: (c, first, buf, frameStart, start, end) => {
    // Nothing a client sends may throw into the event loop (it would take down every connection
    // of this worker): a packet that makes a handler throw closes that connection alone.
    try {
      dispatch(handlers, c, first, buf, frameStart, start, end);
    } catch (err) {
      count(K.C_HANDLER_ERRORS, 1);
      limitedLog().error('handler-error', 'handler error: the connection is closed', () => ({ clientId: c.clientId || null, address: c.address(), err: errFields(err) }));
      c.endReason(DR.internal_error);
      c.protocolClose(RC.IMPLEMENTATION_SPECIFIC_ERROR);
    }
  },
  endOfRead: (bytes) => router.noteRead(bytes),
  markDirty: (c: Connection) => turn.markDirty(c),
  closed: (c: Connection) => { disarmExpiry(c); if (connections.closed(c)) lifecycle.connectionClosed(c); },
});
// TLS, WS and WSS listeners' fds go through their handshake first (net/transports.ts); plain
// TCP's are adopted directly, as before those listeners existed.
const specs = listenerSpecs(config);
const transports = specs.length > 1
  ? new Transports({ config, specs, tls: wiring.tls, count, ready: (t, identity, peer) => { connections.adoptStream(t, identity, peer); } })
  : null;
// Each fd is counted open on its listener until it closes; a PROXY header is read first where
// the listener takes one (net/admission.ts).
const admission = new Admission({
  index, config, specs, open, count,
  tcp: (socket, peer, listener) => { connections.adoptSocket(socket, null, peer, listener); },
  other: (socket, peer, listener, rest) => { if (transports) transports.adoptSocket(socket, peer, listener, rest); else socket.destroy(); },
});
const inbound = new Inbound(wiring.acceptRing, wiring.bell, peers, (fd, listener) => admission.adopt(fd, listener), schedule);

/** SIGTERM: stop taking connections, close them all, then write what the store still holds. */
function shutdown(done: () => void): void {
  inbound.stop();
  transports?.closeAll();
  connections.closeAll(() => { router.flushBatch(); persister.flush(true); coord.flushSoon(); done(); });
}

// The parentPort listener is the ref'd handle that keeps this loop alive while the doorbell
// wait (Atomics.waitAsync, which does not) is the only pending work.
parentPort!.on('message', (m: PeerReset | TlsReload | LimitsReload | BannedUpdate | AdminAsk<WorkerQuery> | { t: 'shutdown' } | { t: 'go' }) => {
  // SIGHUP's limits: handlers and the sweep read the config each time; client rates apply to
  // connections made from now on.
  if (m.t === 'limits') Object.assign(config, m.limits);
  else if (m.t === 'admin') {
    let reply: AdminReply<WorkerAnswer>;
    try { reply = { t: 'admin-reply', id: m.id, a: admin.answer(m.q) }; } catch (err) { reply = { t: 'admin-reply', id: m.id, error: (err as Error).message }; }
    parentPort!.postMessage(reply);
  } else if (m.t === 'banned') {
    admin.setBanned(m.entries);
    parentPort!.postMessage({ t: 'banned-applied', seq: m.seq });
  } else if (m.t === 'tls-reload') {
    const error = transports ? transports.reload(m.material) : null;
    parentPort!.postMessage({ t: 'tls-reloaded', seq: m.seq, error } satisfies TlsReloaded);
  } else if (m.t === 'peer-reset') {
    peers.reset(m.index, m.inbound, m.outbound, wiring.bells[m.index]);
    durability.peerReset(m.index);
  } else if (m.t === 'shutdown') shutdown(() => process.exit(0));
  else if (m.t === 'go') lifecycle.go();
});

setInterval(() => { connections.sweep(); transports?.sweep(Date.now()); }, 500).unref();
// /metrics: connections by transport as they open and close; in-flight and queued messages
// sampled once a second (a walk over this worker's sessions, no work per message).
const gaugeRow = new Float64Array(wiring.gauges, index * G.GAUGES_PER_WORKER * 8, G.GAUGES_PER_WORKER);
connections.keepGauges(gaugeRow);
if (config.metrics !== 'false') {
  setInterval(() => {
    let inflight = 0;
    let queued = 0;
    for (const s of table.byClientId.values()) { inflight += s.inflightCount; queued += s.queuedCount; }
    gaugeRow[G.G_INFLIGHT] = inflight;
    gaugeRow[G.G_QUEUED] = queued;
  }, 1000).unref();
}
// Session queues that are empty give their ring and arrays back, so a session that once had a
// backlog costs nothing more when idle (session/queue.ts keeps them between refills meanwhile).
setInterval(() => { for (const s of table.byClientId.values()) s.trimQueue(); }, 5000).unref();
// For /livez and /metrics on the main thread: a timer, off the message path.
startHeartbeat(wiring.heartbeats, index);
const sys = index === 0 ? startSysTopics({ interval: config.sysInterval, counters: wiring.counters, clusterState, startedAt: wiring.startedAt, router, ringDirty: schedule }) : null;
inbound.pump();
