// What one node answers about itself to the admin API (src/http/api.ts): its clients, sessions,
// retained messages, counters and banned list, through the admin bridge (workers, coordinator).
// The API on this node asks it directly; in a cluster, the API on any other member asks it too,
// through that member's coordinator, the peer gRPC service (src/cluster/admin-service.ts) and
// this node's coordinator, which posts the query here (Supervisor.onAdminPeer). `everywhere()`
// is the API's one entry point: this node's answer plus, in a cluster, every other member's.
import type { AdminBridge } from './admin-bridge';
import type { BannedService } from './banned-service';
import type { ClientInfo, NodeAnswer, NodeQuery, NodeReply, PeersAnswer, RetainedInfo, RetainedJson, WorkerAnswer } from '../shared/admin-messages';
import { nodeQueryProblem } from '../shared/admin-messages';

/**
 * Payload bytes (base64) one node puts in a page of retained messages: the page crosses nodes in
 * one gRPC message (16 MiB at most, src/cluster/peer-server.ts). A page cut short says so and
 * the merge stops there (keyset paging stays right).
 */
const RETAINED_PAGE_BYTES = 4 * 1024 * 1024;

/** What the API gets: each member's answer, and who did not answer (null: not in a cluster). */
export interface Everywhere {
  replies: NodeReply[];
  cluster: { self: string; members: string[]; fenced: boolean; missing: Record<string, string> } | null;
}

export interface NodeAdminDeps {
  bridge: AdminBridge;
  banned: BannedService;
  /** Every counter summed over the workers, by its $SYS name. */
  stats(): Record<string, number | string | null>;
  /** This node's id with --etcd, else null (nothing cluster-related is asked). */
  nodeId: string | null;
  /** PUT log-level and POST reload asked by another member (the same as on this node's own API). */
  setLogLevel(level: string): void;
  reload(): Promise<{ ok: boolean; lines: string[] }>;
}

export function retainedJson(m: RetainedInfo): RetainedJson {
  const payload = Buffer.from(m.payload.buffer, m.payload.byteOffset, m.payload.byteLength);
  const text = payload.toString('utf8');
  return {
    topic: m.topic,
    payload: Buffer.from(text, 'utf8').equals(payload) ? text : null,
    payloadBase64: payload.toString('base64'),
    qos: m.qos,
    expiresAt: m.expiryAt ? new Date(m.expiryAt).toISOString() : null,
  };
}

export class NodeAdmin {
  constructor(private readonly deps: NodeAdminDeps) {}

  get nodeId(): string | null { return this.deps.nodeId; }

  /** This node's answer, and in a cluster every other member's (asked at the same time). */
  async everywhere(q: NodeQuery): Promise<Everywhere> {
    const self = this.deps.nodeId;
    if (self === null) return { replies: [{ node: '', a: await this.local(q) }], cluster: null };
    const [mine, peers] = await Promise.all([this.local(q), this.deps.bridge.askCoordinator({ op: 'peers', q })]);
    const p = peers as PeersAnswer;
    return { replies: [{ node: self, a: mine }, ...p.replies], cluster: { self, members: p.members, fenced: p.fenced, missing: p.missing } };
  }

  /** Only the other members (a ban applied here already). */
  async peers(q: NodeQuery): Promise<PeersAnswer | null> {
    if (this.deps.nodeId === null) return null;
    return await this.deps.bridge.askCoordinator({ op: 'peers', q }) as PeersAnswer;
  }

  /** A query from another member (already checked by the coordinator; checked again: cheap). */
  async fromPeer(q: NodeQuery): Promise<NodeAnswer> {
    const problem = nodeQueryProblem(q);
    if (problem) throw new Error(problem);
    return this.local(q);
  }

  /** This node's own answer. */
  async local(q: NodeQuery): Promise<NodeAnswer> {
    const { bridge, banned } = this.deps;
    switch (q.op) {
      case 'clients': {
        const answers = await bridge.askWorkers({ op: 'clients', after: q.after, limit: q.limit, clientId: q.clientId, username: q.username, address: q.address });
        const all: ClientInfo[] = [];
        for (const a of answers) if (a.op === 'clients') all.push(...a.clients);
        all.sort((x, y) => (x.clientId < y.clientId ? -1 : 1));
        return { op: 'clients', clients: all.slice(0, q.limit).map((c) => this.mark(c)) };
      }
      case 'client': return { op: 'client', client: await this.findClient(q.clientId) };
      case 'kick': {
        const answers = await bridge.askWorkers({ op: 'kick', clientId: q.clientId });
        return { op: 'kick', kicked: answers.some((a) => a.op === 'kick' && a.kicked) };
      }
      case 'subscriptions': {
        const [client, answers] = await Promise.all([this.findClient(q.clientId), bridge.askWorkers({ op: 'subscriptions', clientId: q.clientId, after: q.after, limit: q.limit })]);
        const hit = answers.find((a): a is Extract<WorkerAnswer, { op: 'subscriptions' }> => a.op === 'subscriptions' && a.found);
        return { op: 'subscriptions', found: hit !== undefined, connected: client?.connected ?? false, subscriptions: hit?.subscriptions ?? [] };
      }
      case 'stats': return { op: 'stats', stats: this.deps.stats() };
      case 'retained-list': {
        const a = await bridge.askCoordinator({ op: 'retained-list', filter: q.filter, after: q.after, limit: q.limit });
        if (a.op !== 'retained-list') throw new Error('unexpected answer');
        const messages: RetainedJson[] = [];
        let bytes = 0;
        let cut = false;
        for (const m of a.messages) {
          const j = retainedJson(m);
          bytes += j.payloadBase64.length + (j.payload?.length ?? 0);
          if (bytes > RETAINED_PAGE_BYTES && messages.length > 0) { cut = true; break; }
          messages.push(j);
        }
        return { op: 'retained-list', messages, total: a.total, cut };
      }
      case 'retained-get': {
        const a = await bridge.askCoordinator({ op: 'retained-get', topic: q.topic });
        return { op: 'retained-get', message: a.op === 'retained-get' && a.message ? retainedJson(a.message) : null };
      }
      case 'retained-delete': {
        const a = await bridge.askCoordinator({ op: 'retained-delete', topic: q.topic });
        return { op: 'retained-delete', existed: a.op === 'retained-delete' && a.existed };
      }
      case 'ban-list': return { op: 'ban-list', entries: banned.apiEntries() };
      case 'ban-add': await banned.put(q.kind, q.value, q.expiresAt); return { op: 'ban-add', ok: true };
      case 'ban-remove': return { op: 'ban-remove', removed: await banned.remove(q.kind, q.value) };
      case 'log-level': this.deps.setLogLevel(q.level); return { op: 'log-level', level: q.level };
      case 'reload': { const r = await this.deps.reload(); return { op: 'reload', ok: r.ok, lines: r.lines }; }
    }
  }

  private async findClient(clientId: string): Promise<ClientInfo | null> {
    const answers = await this.deps.bridge.askWorkers({ op: 'client', clientId });
    const found = answers.map((a) => (a.op === 'client' ? a.client : null)).filter((c): c is ClientInfo => c !== null);
    // During a takeover two workers may hold the id for a moment: the connected one is the client.
    const c = found.find((x) => x.connected) ?? found[0] ?? null;
    return c ? this.mark(c) : null;
  }

  private mark(c: ClientInfo): ClientInfo {
    if (this.deps.nodeId !== null) c.node = this.deps.nodeId;
    return c;
  }
}

/** How long, and how often, a node tries to take the banned list from the other members. */
const BAN_SYNC_MS = 5000;
const BAN_SYNC_EVERY_MS = 500;

/**
 * A node that joins (or rejoins after fencing) takes the API entries of the banned list from
 * the members that answer (their union; for an entry on several, the later expiry): what was
 * added or removed while it was away is in force here before it serves. A member that just
 * joined may not be in the others' view yet (they refuse it), so it tries again for a few
 * seconds. Resolves to a line for the log.
 */
export async function takeBannedFromPeers(admin: NodeAdmin, banned: BannedService, wait = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref())): Promise<string> {
  let last = '';
  const until = Date.now() + BAN_SYNC_MS;
  for (let i = 0; i === 0 || Date.now() < until; i++) {
    if (i > 0) await wait(BAN_SYNC_EVERY_MS);
    let p: PeersAnswer | null;
    try { p = await admin.peers({ op: 'ban-list' }); } catch (err) { last = (err as Error).message; continue; }
    if (!p) return 'not a cluster member';
    if (p.fenced) { last = 'fenced'; continue; }
    if (p.members.length <= 1) return 'banned list: no other member to take it from';
    const lists = p.replies.filter((r) => r.a.op === 'ban-list');
    if (lists.length === 0) { last = Object.entries(p.missing).map(([n, why]) => `${n}: ${why}`).join('; '); continue; }
    const union = new Map<string, { kind: string; value: string; expiresAt: number }>();
    for (const r of lists) {
      if (r.a.op !== 'ban-list') continue;
      for (const e of r.a.entries) {
        const key = `${e.kind}\0${e.value}`;
        const had = union.get(key);
        if (!had || (had.expiresAt !== 0 && (e.expiresAt === 0 || e.expiresAt > had.expiresAt))) union.set(key, e);
      }
    }
    await banned.replaceApi([...union.values()]);
    return `banned list: ${union.size} API entr${union.size === 1 ? 'y' : 'ies'} taken from ${lists.map((r) => r.node).join(', ')}`;
  }
  return `banned list: no other member answered (${last}); the API entries added elsewhere are not in force here until they are added again`;
}
