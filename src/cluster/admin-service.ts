// The cluster's admin service, so the admin API on any member answers for the whole cluster
// (src/http/api.ts): `fleetmq.Admin/Ask` on the peer server, one unary call per member and API
// request, a small JSON body in raw Buffers (peer-server.ts, "CONTRACT"): {from, inc, q} in,
// the member's NodeAnswer out. Never on the message path.
//
// - Asking (`askPeers`): every other member of the view this node acts on, at once, each with a
//   deadline of CALL_MS. A member that fails or does not answer in time is named in `missing`
//   (with why); the API marks its answer partial instead of failing or hanging.
// - Answering: the coordinator posts the query to this process's main thread (it holds the
//   admin bridge to the workers and the banned list, src/main/node-admin.ts) and answers the
//   call with what comes back. Only a current member (node id and incarnation of a link in this
//   node's view) is answered: a stranger on the cluster port cannot kick or ban. At most
//   MAX_INCOMING queries wait for the main thread at once (more: RESOURCE_EXHAUSTED), each at
//   most LOCAL_MS (then DEADLINE_EXCEEDED, and a late answer is dropped).
//
// Run by the coordinator thread, only with --etcd; built before the node joins.
import * as grpc from '@grpc/grpc-js';
import { bytesMethod } from './peer-server';
import type { ClusterNode } from './node';
import { nodeQueryProblem, type NodeAnswer, type NodeQuery, type NodeReply, type PeerAsk, type PeerAskReply, type PeersAnswer } from '../shared/admin-messages';

export const ADMIN_ASK = bytesMethod('Admin', 'Ask', 'unary');
/** Deadline of one call to a member. */
export const CALL_MS = 1500;
/** How long an asked node waits for its own main thread (a little under the caller's deadline plus slack). */
const LOCAL_MS = CALL_MS + 500;
const MAX_INCOMING = 64;

export interface AdminServiceDeps {
  /** Posts a member's query to this process's main thread (answered through `fromMain`). */
  toMain(m: PeerAsk): void;
  count: {
    /** A call made to a member. */
    asked(): void;
    /** A call that failed or timed out (the member is reported missing). */
    missing(): void;
    /** An incoming call refused: not a current member, not a query, or too many waiting. */
    refused(): void;
  };
}

interface Incoming { cb: grpc.sendUnaryData<Buffer>; timer: NodeJS.Timeout }

const identity = (b: Buffer): Buffer => b;

export class AdminService {
  private nextId = 1;
  private readonly incoming = new Map<number, Incoming>();
  private fenced = false;

  constructor(private readonly node: ClusterNode, private readonly deps: AdminServiceDeps) {
    node.peerServer.addService({ Ask: ADMIN_ASK }, {
      Ask: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => this.onAsk(call, cb),
    });
  }

  /** Fenced or not (while fenced the view is empty and the answer says so). */
  setFenced(fenced: boolean): void { this.fenced = fenced; }

  /** `q` to every other member of the view, each within CALL_MS. */
  async askPeers(q: NodeQuery): Promise<PeersAnswer> {
    const links = this.node.peers.all();
    const self = this.node.nodeId;
    const inc = this.node.incarnation ?? '';
    const body = Buffer.from(JSON.stringify({ from: self, inc, q }));
    const replies: NodeReply[] = [];
    const missing: Record<string, string> = {};
    await Promise.all(links.map((link) => new Promise<void>((resolve) => {
      this.deps.count.asked();
      link.client.makeUnaryRequest(ADMIN_ASK.path, identity, identity, body, new grpc.Metadata(), { deadline: Date.now() + CALL_MS }, (err, res) => {
        let a: NodeAnswer | null = null;
        let why = err ? `${grpc.status[err.code] ?? err.code}: ${err.details || err.message}` : 'empty answer';
        if (!err && res) {
          try {
            const v = JSON.parse(res.toString('utf8')) as NodeAnswer;
            if (v && v.op === q.op) a = v; else why = 'an answer to another question';
          } catch { why = 'an answer that is not JSON'; }
        }
        if (a) replies.push({ node: link.nodeId, a });
        else { missing[link.nodeId] = why; this.deps.count.missing(); }
        resolve();
      });
    })));
    replies.sort((x, y) => (x.node < y.node ? -1 : 1));
    return { op: 'peers', self, members: [self, ...links.map((l) => l.nodeId)].sort(), fenced: this.fenced, replies, missing };
  }

  /** The main thread's answer to a member's query. */
  fromMain(m: PeerAskReply): void {
    const w = this.incoming.get(m.id);
    if (!w) return; // timed out or cancelled meanwhile
    this.incoming.delete(m.id);
    clearTimeout(w.timer);
    if (m.a !== undefined) w.cb(null, Buffer.from(JSON.stringify(m.a)));
    else w.cb({ code: grpc.status.INTERNAL, details: m.error ?? 'no answer' });
  }

  private onAsk(call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>): void {
    let parsed: unknown = null;
    try { parsed = JSON.parse(call.request.toString('utf8')); } catch { parsed = null; }
    const refuse = (code: grpc.status, details: string) => { this.deps.count.refused(); cb({ code, details }); };
    const body = parsed as { from?: unknown; inc?: unknown; q?: unknown } | null;
    if (!body || typeof body !== 'object' || typeof body.from !== 'string' || typeof body.inc !== 'string') { refuse(grpc.status.INVALID_ARGUMENT, 'not an Admin/Ask request'); return; }
    const problem = nodeQueryProblem(body.q);
    if (problem) { refuse(grpc.status.INVALID_ARGUMENT, problem); return; }
    const link = this.node.peers.link(body.from);
    if (!link || link.incarnation !== body.inc) { refuse(grpc.status.FAILED_PRECONDITION, `${body.from} (${body.inc}) is not a member in ${this.node.nodeId}'s view`); return; }
    if (this.incoming.size >= MAX_INCOMING) { refuse(grpc.status.RESOURCE_EXHAUSTED, `${MAX_INCOMING} admin queries waiting already`); return; }
    const id = this.nextId++;
    const timer = setTimeout(() => {
      if (!this.incoming.delete(id)) return;
      cb({ code: grpc.status.DEADLINE_EXCEEDED, details: `${this.node.nodeId} did not answer within ${LOCAL_MS} ms` });
    }, LOCAL_MS);
    this.incoming.set(id, { cb, timer });
    call.on('cancelled', () => {
      const w = this.incoming.get(id);
      if (w) { clearTimeout(w.timer); this.incoming.delete(id); }
    });
    this.deps.toMain({ t: 'admin-peer', id, q: body.q as NodeQuery });
  }

  close(): void {
    for (const [id, w] of this.incoming) {
      clearTimeout(w.timer);
      w.cb({ code: grpc.status.UNAVAILABLE, details: 'the node is stopping' });
      this.incoming.delete(id);
    }
  }
}
