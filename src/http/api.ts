// /api/v1: the admin API on the operations HTTP listener, JSON in and out, HTTP Basic with API
// keys (http/api-keys.ts). Without --api-keys-file every request is 401: the API fails closed,
// and says why in the body, rather than 404, which would hide that it exists from an operator
// who forgot the flag. A `read` key may GET; every other method needs an `admin` key (403).
//
// Lists page by key (`?limit=&cursor=`): each answer is {"data": [...], "next": CURSOR|null},
// CURSOR opaque (the last item's key), `limit` 1..MAX_LIMIT (default DEFAULT_LIMIT). Queries
// about clients go to every worker and back (src/main/admin-bridge.ts: bounded, with a timeout:
// 503 / 504), retained messages to the coordinator. Routes: README.md, "Operate it".
//
// In a cluster (--etcd) the answers are the whole cluster's: each query goes to this node and
// to every other member at once (src/main/node-admin.ts, src/cluster/admin-service.ts, 1.5 s per
// member) and the answers are merged: lists in one global order (client id, topic) with the same
// keyset cursor, so paging stays right across nodes; a kick, a retained delete and a ban apply
// on every member. Every such answer carries `partial` (some member did not answer, or this
// node is fenced and cannot see the others), `missing` (their ids) and `nodes` (who answered);
// a single node's answers are exactly as before.
import type { ApiHandler, ApiRequest, Reply } from './server';
import type { ApiKeys } from './api-keys';
import { AdminBridge, BridgeBusy, BridgeTimeout } from '../main/admin-bridge';
import type { NodeAdmin, Everywhere } from '../main/node-admin';
import type { BannedService } from '../main/banned-service';
import { BannedError, BAN_KINDS, type BanEntry, type BanKind } from '../shared/banned';
import { LOG_LEVEL_NAMES, type ClientInfo, type NodeAnswer, type PeersAnswer, type PublishProps, type RetainedJson, type SubscriptionInfo } from '../shared/admin-messages';
import { C_API_REQUESTS, C_API_FAILURES } from '../shared/counters';

export const DEFAULT_LIMIT = 100;
export const MAX_LIMIT = 1000;
export const LOG_LEVELS = LOG_LEVEL_NAMES;

export interface ApiDeps {
  keys: ApiKeys;
  bridge: AdminBridge;
  banned: BannedService;
  /** This node's answers, and in a cluster every member's (src/main/node-admin.ts). */
  admin: NodeAdmin;
  /** Every counter summed over the workers, by its $SYS name. */
  stats(): Record<string, number | string | null>;
  /** What SIGHUP does; `lines` say what each part did. */
  reload(): Promise<{ ok: boolean; lines: string[] }>;
  /** The logger's level (wired by the logging part); null: 501. */
  setLogLevel: ((level: string) => void) | null;
  /** Main-thread counters (worker 0's row, src/shared/counters.ts). */
  count(counter: number, n: number): void;
}

class HttpError extends Error {
  constructor(readonly status: number, message: string, readonly headers?: Record<string, string>, readonly extra: object = {}) { super(message); }
}

const AUTH_HEADER = { 'WWW-Authenticate': 'Basic realm="fleetmq admin API", charset="UTF-8"' };

function json(status: number, body: unknown): Reply {
  return { status, body: JSON.stringify(body) + '\n', contentType: 'application/json; charset=utf-8' };
}

export function apiHandler(deps: ApiDeps): ApiHandler {
  return async (req) => {
    deps.count(C_API_REQUESTS, 1);
    let reply: Reply;
    try {
      reply = await handle(deps, req);
    } catch (err) {
      if (err instanceof HttpError) reply = { ...json(err.status, { error: err.message, ...err.extra }), headers: err.headers };
      else if (err instanceof BridgeBusy) reply = json(503, { error: err.message });
      else if (err instanceof BridgeTimeout) reply = json(504, { error: err.message });
      else throw err;
    }
    if (reply.status >= 400) deps.count(C_API_FAILURES, 1);
    return reply;
  };
}

async function handle(deps: ApiDeps, req: ApiRequest): Promise<Reply> {
  if (!deps.keys.configured) throw new HttpError(401, 'no API keys configured: start the broker with --api-keys-file FILE (keys made by `fleetmq apikey FILE NAME ROLE`)', AUTH_HEADER);
  const who = await deps.keys.check(req.authorization);
  if (!who.ok) {
    if (who.why === 'busy') throw new HttpError(503, 'too many API key checks at once; try again', { 'Retry-After': '1' });
    throw new HttpError(401, who.why === 'none' ? 'API key required (HTTP Basic: NAME:SECRET)' : 'unknown API key or wrong secret', AUTH_HEADER);
  }
  const read = req.method === 'GET' || req.method === 'HEAD';
  if (!read && who.role !== 'admin') throw new HttpError(403, `key ${JSON.stringify(who.name)} has role read: ${req.method} needs an admin key`);
  const [head, ...tail] = req.path.split('/');
  const seg = [head, ...tail];
  let shape = head;
  if (head === 'retained' && tail.length > 0) shape = 'retained/:x';
  else if (head === 'banned' && tail.length >= 2) shape = 'banned/:x';
  else if (head === 'clients' && tail.length === 1) shape = 'clients/:x';
  else if (head === 'clients' && tail.length === 2 && tail[1] === 'subscriptions') shape = 'clients/:x/subscriptions';
  else if (tail.length > 0) shape = `${head}/?`;
  const route = `${req.method} ${shape}`;
  switch (route) {
    case 'GET clients': return listClients(deps, req);
    case 'GET clients/:x': return getClient(deps, param(seg[1]));
    case 'DELETE clients/:x': return kick(deps, param(seg[1]));
    case 'GET clients/:x/subscriptions': return subscriptions(deps, param(seg[1]), req);
    case 'GET retained': return listRetained(deps, req);
    case 'GET retained/:x': return getRetained(deps, rest(seg, 1));
    case 'DELETE retained/:x': return deleteRetained(deps, rest(seg, 1));
    case 'POST publish': return publish(deps, req);
    case 'GET banned': return listBanned(deps, req);
    case 'POST banned': return await addBan(deps, req);
    case 'DELETE banned/:x': return await removeBan(deps, seg);
    case 'GET stats': return stats(deps);
    case 'PUT log-level': return await logLevel(deps, req);
    case 'POST reload': return await reload(deps);
  }
  const known = ['clients', 'retained', 'publish', 'banned', 'stats', 'log-level', 'reload'];
  if (known.includes(seg[0] ?? '')) throw new HttpError(405, `${req.method} /api/v1/${req.path} is not an endpoint (see README.md, "Operate it")`);
  throw new HttpError(404, `no endpoint /api/v1/${req.path}`);
}

function param(s: string): string {
  try { return decodeURIComponent(s); } catch { throw new HttpError(400, `bad URL encoding: ${s}`); }
}

/** A topic may hold '/': the rest of the path, decoded (URL-encoded '%2F' and plain '/' both work). */
function rest(seg: string[], from: number): string {
  const t = param(seg.slice(from).join('/'));
  if (t === '') throw new HttpError(400, 'empty topic');
  return t;
}

function paging(req: ApiRequest): { limit: number; after: string } {
  const l = req.query.get('limit');
  const limit = l === null ? DEFAULT_LIMIT : Number(l);
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) throw new HttpError(400, `limit must be an integer 1..${MAX_LIMIT}`);
  const c = req.query.get('cursor');
  let after = '';
  if (c !== null && c !== '') {
    if (!/^[A-Za-z0-9_-]+$/.test(c)) throw new HttpError(400, 'bad cursor');
    after = Buffer.from(c, 'base64url').toString('utf8');
  }
  return { limit, after };
}

const cursorOf = (key: string): string => Buffer.from(key, 'utf8').toString('base64url');

function page<T>(items: T[], limit: number, key: (x: T) => string, extra: object = {}): Reply {
  const data = items.slice(0, limit);
  return json(200, { data, next: items.length > limit ? cursorOf(key(data[data.length - 1])) : null, ...extra });
}

/** In a cluster: who answered, who did not (and so whether the answer is partial). Nothing on a single node. */
function clusterFields(e: Everywhere): object {
  if (!e.cluster) return {};
  const missing = Object.keys(e.cluster.missing).sort();
  return { partial: missing.length > 0 || e.cluster.fenced, missing, nodes: e.replies.map((r) => r.node), ...(e.cluster.fenced ? { fenced: true } : {}) };
}

/** The answers of one kind, with the node that gave each. */
function answers<O extends NodeAnswer['op']>(e: Everywhere, op: O): Array<{ node: string; a: Extract<NodeAnswer, { op: O }> }> {
  return e.replies.filter((r) => r.a.op === op) as Array<{ node: string; a: Extract<NodeAnswer, { op: O }> }>;
}

function notFound(e: Everywhere, message: string): HttpError {
  return new HttpError(404, message, undefined, clusterFields(e));
}

async function listClients(deps: ApiDeps, req: ApiRequest): Promise<Reply> {
  const { limit, after } = paging(req);
  const opt = (k: string) => req.query.get(k) ?? undefined;
  // One more than asked from each worker and node: the merged list then says whether a next page
  // exists. Keyset paging by client id: one global order over every node, whatever answers.
  const e = await deps.admin.everywhere({ op: 'clients', after, limit: limit + 1, clientId: opt('clientid'), username: opt('username'), address: opt('address') });
  const byId = new Map<string, ClientInfo>();
  for (const { a } of answers(e, 'clients')) {
    for (const c of a.clients) {
      // One owner per client id in a cluster; during a takeover the connected one is the client.
      const seen = byId.get(c.clientId);
      if (!seen || (!seen.connected && c.connected)) byId.set(c.clientId, c);
    }
  }
  const all = [...byId.values()].sort((x, y) => (x.clientId < y.clientId ? -1 : 1));
  return page(all, limit, (c) => c.clientId, clusterFields(e));
}

async function findClient(deps: ApiDeps, clientId: string): Promise<{ e: Everywhere; client: ClientInfo | null }> {
  const e = await deps.admin.everywhere({ op: 'client', clientId });
  const found = answers(e, 'client').map(({ a }) => a.client).filter((c): c is ClientInfo => c !== null);
  return { e, client: found.find((c) => c.connected) ?? found[0] ?? null };
}

async function getClient(deps: ApiDeps, clientId: string): Promise<Reply> {
  const { e, client } = await findClient(deps, clientId);
  if (!client) throw notFound(e, `no client or session ${JSON.stringify(clientId)}`);
  return json(200, client);
}

/** On whichever node holds it (v5 DISCONNECT 0x98 there). */
async function kick(deps: ApiDeps, clientId: string): Promise<Reply> {
  const e = await deps.admin.everywhere({ op: 'kick', clientId });
  const on = answers(e, 'kick').filter(({ a }) => a.kicked).map(({ node }) => node);
  if (on.length === 0) throw notFound(e, `client ${JSON.stringify(clientId)} is not connected`);
  return json(200, e.cluster ? { kicked: clientId, node: on[0], ...clusterFields(e) } : { kicked: clientId });
}

async function subscriptions(deps: ApiDeps, clientId: string, req: ApiRequest): Promise<Reply> {
  const { limit, after } = paging(req);
  const e = await deps.admin.everywhere({ op: 'subscriptions', clientId, after, limit: limit + 1 });
  const found = answers(e, 'subscriptions').filter(({ a }) => a.found);
  const hit = found.find(({ a }) => a.connected) ?? found[0];
  if (!hit) throw notFound(e, `no client or session ${JSON.stringify(clientId)}`);
  return page<SubscriptionInfo>(hit.a.subscriptions, limit, (s) => s.filter, e.cluster ? { node: hit.node, ...clusterFields(e) } : {});
}

/**
 * One node: its counters, as before. A cluster: the counters summed over the members that
 * answered, `nodes` = each member's own, plus who answered.
 */
async function stats(deps: ApiDeps): Promise<Reply> {
  const e = await deps.admin.everywhere({ op: 'stats' });
  const mine = answers(e, 'stats')[0]?.a.stats ?? deps.stats();
  if (!e.cluster) return json(200, mine);
  const totals: Record<string, number | string | null> = { ...mine };
  const perNode: Record<string, unknown> = {};
  for (const { node, a } of answers(e, 'stats')) perNode[node] = a.stats;
  for (const [k, v] of Object.entries(mine)) {
    // Digests (the route hashes) and this node's own facts are not summed.
    if (typeof v !== 'number' || k === 'uptimeSeconds' || k.endsWith('-hash')) continue;
    let sum = 0;
    for (const { a } of answers(e, 'stats')) { const x = a.stats[k]; if (typeof x === 'number') sum += x; }
    totals[k] = sum;
  }
  const { partial, missing, nodes } = clusterFields(e) as { partial: boolean; missing: string[]; nodes: string[] };
  return json(200, { ...totals, node: e.cluster.self, members: e.cluster.members, partial, missing, answered: nodes, ...(e.cluster.fenced ? { fenced: true } : {}), nodes: perNode });
}

/**
 * Merged over the members by topic (keyset paging by topic over the union); a topic held by
 * several members (retained replication, or published on each) shows this node's copy first,
 * else the lowest node id's. `total` is this node's count; `totals` each member's.
 */
async function listRetained(deps: ApiDeps, req: ApiRequest): Promise<Reply> {
  const { limit, after } = paging(req);
  const filter = req.query.get('filter') ?? '#';
  if (!validFilter(filter)) throw new HttpError(400, `filter ${JSON.stringify(filter)} is not a valid topic filter`);
  const e = await deps.admin.everywhere({ op: 'retained-list', filter, after, limit: limit + 1 });
  const lists = answers(e, 'retained-list');
  const byTopic = new Map<string, RetainedJson>();
  // A page cut short by its byte budget ends the merged page at its last topic: a topic after it
  // on that node was not seen, so nothing after it can be shown yet.
  let bound: string | null = null;
  for (const { a } of lists) {
    for (const m of a.messages) if (!byTopic.has(m.topic)) byTopic.set(m.topic, m);
    if (a.cut && a.messages.length > 0) {
      const last = a.messages[a.messages.length - 1].topic;
      if (bound === null || last < bound) bound = last;
    }
  }
  let all = [...byTopic.values()].sort((x, y) => (x.topic < y.topic ? -1 : 1));
  if (bound !== null) { const b = bound; all = all.filter((m) => m.topic <= b); }
  const data = all.slice(0, limit);
  const hasNext = data.length > 0 && (all.length > limit || bound !== null);
  const extra: Record<string, unknown> = { total: lists[0]?.a.total ?? 0 };
  if (e.cluster) { extra.totals = Object.fromEntries(lists.map(({ node, a }) => [node, a.total])); Object.assign(extra, clusterFields(e)); }
  return json(200, { data, next: hasNext ? cursorOf(data[data.length - 1].topic) : null, ...extra });
}

async function getRetained(deps: ApiDeps, topic: string): Promise<Reply> {
  const e = await deps.admin.everywhere({ op: 'retained-get', topic });
  const hit = answers(e, 'retained-get').find(({ a }) => a.message !== null);
  if (!hit || !hit.a.message) throw notFound(e, `no retained message on ${JSON.stringify(topic)}`);
  return json(200, e.cluster ? { ...hit.a.message, node: hit.node, ...clusterFields(e) } : hit.a.message);
}

/** On every member: each removes its copy (durably, before it answers). */
async function deleteRetained(deps: ApiDeps, topic: string): Promise<Reply> {
  const e = await deps.admin.everywhere({ op: 'retained-delete', topic });
  const on = answers(e, 'retained-delete').filter(({ a }) => a.existed).map(({ node }) => node);
  if (on.length === 0) throw notFound(e, `no retained message on ${JSON.stringify(topic)}`);
  return json(200, e.cluster ? { deleted: topic, on, ...clusterFields(e) } : { deleted: topic });
}

function body(req: ApiRequest): Record<string, unknown> {
  let v: unknown;
  try { v = JSON.parse(req.body.toString('utf8')); } catch (err) { throw new HttpError(400, `the body is not JSON: ${(err as Error).message}`); }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new HttpError(400, 'the body must be a JSON object');
  return v as Record<string, unknown>;
}

/** A topic filter as SUBSCRIBE takes it [MQTT-4.7.1-2, MQTT-4.7.1-3]. */
function validFilter(f: string): boolean {
  if (f === '' || f.includes('\0') || Buffer.byteLength(f) > 65535) return false;
  const levels = f.split('/');
  return levels.every((l, i) => (l.includes('#') ? l === '#' && i === levels.length - 1 : !l.includes('+') || l === '+'));
}

const PROPS = new Set(['payloadFormatIndicator', 'messageExpiryInterval', 'contentType', 'responseTopic', 'correlationData', 'userProperties']);

async function publish(deps: ApiDeps, req: ApiRequest): Promise<Reply> {
  const b = body(req);
  const { topic, qos = 0, retain = false, encoding = 'utf8', properties } = b;
  if (typeof topic !== 'string' || topic === '' || /[+#\0]/.test(topic) || Buffer.byteLength(topic) > 65535) {
    throw new HttpError(400, 'topic must be a non-empty topic name without wildcards [MQTT-3.3.2-2]');
  }
  if (topic.startsWith('$')) throw new HttpError(400, 'topics starting with "$" are the broker\'s own [MQTT-4.7.2-1]');
  if (qos !== 0 && qos !== 1 && qos !== 2) throw new HttpError(400, 'qos must be 0, 1 or 2');
  if (typeof retain !== 'boolean') throw new HttpError(400, 'retain must be true or false');
  if (encoding !== 'utf8' && encoding !== 'base64') throw new HttpError(400, 'encoding must be utf8 or base64');
  const raw = b.payload ?? '';
  if (typeof raw !== 'string') throw new HttpError(400, 'payload must be a string (text, or base64 with "encoding": "base64")');
  if (encoding === 'base64' && !/^[A-Za-z0-9+/]*={0,2}$/.test(raw)) throw new HttpError(400, 'payload is not base64');
  const payload = Buffer.from(raw, encoding);
  let props: PublishProps | null = null;
  if (properties !== undefined) {
    if (typeof properties !== 'object' || properties === null || Array.isArray(properties)) throw new HttpError(400, 'properties must be an object');
    for (const k of Object.keys(properties)) if (!PROPS.has(k)) throw new HttpError(400, `unknown property ${JSON.stringify(k)} (allowed: ${[...PROPS].join(', ')})`);
    props = checkProps(properties as Record<string, unknown>);
  }
  await deps.bridge.askAnyWorker({ op: 'publish', topic, payload: new Uint8Array(payload), qos, retain, props });
  return json(200, { published: topic, bytes: payload.length });
}

function checkProps(p: Record<string, unknown>): PublishProps {
  const bad = (why: string): never => { throw new HttpError(400, `properties: ${why}`); };
  if (p.payloadFormatIndicator !== undefined && typeof p.payloadFormatIndicator !== 'boolean') bad('payloadFormatIndicator must be true or false');
  if (p.messageExpiryInterval !== undefined && (!Number.isInteger(p.messageExpiryInterval) || (p.messageExpiryInterval as number) < 0 || (p.messageExpiryInterval as number) > 0xffffffff)) bad('messageExpiryInterval must be seconds, 0..4294967295');
  for (const k of ['contentType', 'responseTopic', 'correlationData']) if (p[k] !== undefined && typeof p[k] !== 'string') bad(`${k} must be a string`);
  if (typeof p.responseTopic === 'string' && /[+#]/.test(p.responseTopic)) bad('responseTopic must not hold wildcards');
  const up = p.userProperties;
  if (up !== undefined) {
    if (typeof up !== 'object' || up === null || Array.isArray(up)) bad('userProperties must be an object of strings or string arrays');
    for (const v of Object.values(up as object)) if (typeof v !== 'string' && !(Array.isArray(v) && v.every((x) => typeof x === 'string'))) bad('userProperties values must be strings or string arrays');
  }
  return p as PublishProps;
}

function banJson(e: BanEntry): object {
  return { kind: e.kind, value: e.value, source: e.source, expiresAt: e.expiresAt ? new Date(e.expiresAt).toISOString() : null };
}

function listBanned(deps: ApiDeps, req: ApiRequest): Reply {
  const { limit, after } = paging(req);
  const key = (e: BanEntry) => `${e.kind}\0${e.value}`;
  const all = deps.banned.all().filter((e) => key(e) > after).sort((a, b) => (key(a) < key(b) ? -1 : 1));
  const data = all.slice(0, limit);
  return json(200, { data: data.map(banJson), next: all.length > limit ? cursorOf(key(data[data.length - 1])) : null });
}

/**
 * Answers once every worker refuses the new entry (and has disconnected the clients it names);
 * in a cluster, every worker of every member that answered (the others are in `missing`).
 */
async function addBan(deps: ApiDeps, req: ApiRequest): Promise<Reply> {
  const b = body(req);
  const ttl = b.ttlSeconds ?? 0;
  if (!Number.isInteger(ttl) || (ttl as number) < 0 || (ttl as number) > 10 * 365 * 86400) throw new HttpError(400, 'ttlSeconds must be an integer number of seconds (0: until removed)');
  let entry: BanEntry;
  try {
    entry = await deps.banned.add(String(b.kind), b.value, ttl as number);
  } catch (err) {
    if (err instanceof BannedError) throw new HttpError(400, err.message);
    throw err;
  }
  const peers = await deps.admin.peers({ op: 'ban-add', kind: entry.kind, value: entry.value, expiresAt: entry.expiresAt });
  return json(201, { ...banJson(entry), ...peersFields(peers) });
}

/** A change applied here, then on the other members: who took it, who did not. */
function peersFields(p: PeersAnswer | null): object {
  if (!p) return {};
  return clusterFields({ replies: [{ node: p.self, a: { op: 'stats', stats: {} } }, ...p.replies], cluster: { self: p.self, members: p.members, fenced: p.fenced, missing: p.missing } });
}

/** DELETE banned/KIND/VALUE (VALUE URL-encoded: a CIDR block's '/' as %2F, or plain). */
async function removeBan(deps: ApiDeps, seg: string[]): Promise<Reply> {
  const kind = param(seg[1]);
  if (!BAN_KINDS.includes(kind as BanKind)) throw new HttpError(400, `kind must be one of ${BAN_KINDS.join(', ')}`);
  const value = rest(seg, 2);
  const here = await deps.banned.remove(kind as BanKind, value);
  const peers = await deps.admin.peers({ op: 'ban-remove', kind: kind as BanKind, value });
  const anywhere = here || (peers?.replies.some((r) => r.a.op === 'ban-remove' && r.a.removed) ?? false);
  if (!anywhere) throw new HttpError(404, `no ${kind} ${JSON.stringify(value)} added through the API (entries from the config or --banned-file are removed there)`, undefined, peersFields(peers));
  return json(200, { removed: { kind, value }, ...peersFields(peers) });
}

/** Here, then (in a cluster) on every other member: one operator action for the whole cluster. */
async function logLevel(deps: ApiDeps, req: ApiRequest): Promise<Reply> {
  const { level } = body(req);
  if (typeof level !== 'string' || !LOG_LEVELS.includes(level)) throw new HttpError(400, `level must be one of ${LOG_LEVELS.join(', ')}`);
  if (!deps.setLogLevel) throw new HttpError(501, 'this broker has no adjustable logger');
  try { deps.setLogLevel(level); } catch (err) { throw new HttpError(400, (err as Error).message); }
  return json(200, { level, ...peersFields(await deps.admin.peers({ op: 'log-level', level })) });
}

/**
 * What SIGHUP does, here and (in a cluster) on every other member; `ok` only if every node
 * that answered reloaded cleanly, `lines` this node's, `byNode` each other member's.
 */
async function reload(deps: ApiDeps): Promise<Reply> {
  const r = await deps.reload();
  const peers = await deps.admin.peers({ op: 'reload' });
  if (!peers) return json(r.ok ? 200 : 422, r);
  const byNode: Record<string, { ok: boolean; lines: string[] }> = {};
  for (const x of peers.replies) if (x.a.op === 'reload') byNode[x.node] = { ok: x.a.ok, lines: x.a.lines };
  const ok = r.ok && Object.values(byNode).every((x) => x.ok);
  return json(ok ? 200 : 422, { ok, lines: r.lines, byNode, ...peersFields(peers) });
}
