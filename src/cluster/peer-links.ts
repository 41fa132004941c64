// One gRPC channel per other member of the cluster view, following the view.
//
// CONTRACT (read by every module that talks to peers):
// - Run by the coordinator thread, only with --etcd. The coordinator feeds it every view it
//   acts on (`update(members)`: the MemberInfo list of the view, this node included or not);
//   while this node is fenced it is fed an empty list, so every link goes down.
// - A link exists for each member other than this node: `PeerLink {nodeId, incarnation,
//   address, client}`, address = `advertise:clusterPort` of its member record. It is created
//   when the member appears, and closed when the member leaves the view or shows a different
//   incarnation (a restarted or rejoined node: a new link, never the old one reused, so nothing
//   sent to the old incarnation can be taken by the new one).
// - Events: 'up' (link) after a link is created, 'down' (link, reason) after it is closed
//   ('left' | 'incarnation' | 'closed'). Listeners run synchronously inside `update()`; they
//   must not throw. An 'up' link is reachable in the view, not yet connected: gRPC connects
//   lazily (this module asks it to connect at once) and reconnects with backoff by itself; a
//   call on a link that cannot connect fails with UNAVAILABLE, and callers decide to retry.
// - `link(nodeId)` / `client(nodeId)` / `channel(nodeId)` give the current link, its generic
//   `grpc.Client` (use `makeUnaryRequest` / `makeBidiStreamRequest` with a method from
//   peer-server.ts's `bytesMethod`), or its channel (for a generated client:
//   `new Ctor(address, creds, { channelOverride: channel })`); null when there is no link.
//   Hold the PeerLink you called on and compare with `link(nodeId)` before acting on an
//   answer: an answer from a closed link belongs to an old incarnation.
// - Channel options: peer-server.ts PEER_CHANNEL_OPTIONS (keepalive 10 s / 5 s, raised window
//   and message size). Each link has its own channel (`grpc.use_local_subchannel_pool`), so
//   closing one never closes a subchannel another link shares.
import { EventEmitter } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import { PEER_CHANNEL_OPTIONS } from './peer-server';
import type { MemberInfo } from './membership';

export interface PeerLink {
  readonly nodeId: string;
  readonly incarnation: string;
  readonly address: string;
  readonly client: grpc.Client;
  /** Set when the link is closed; calls made on it fail. */
  closed: boolean;
}

export type LinkDownReason = 'left' | 'incarnation' | 'closed';

export interface PeerLinksEvents {
  up: [link: PeerLink];
  down: [link: PeerLink, reason: LinkDownReason];
}

export function peerAddress(m: Pick<MemberInfo, 'advertise' | 'clusterPort'>): string {
  return m.advertise.includes(':') ? `[${m.advertise}]:${m.clusterPort}` : `${m.advertise}:${m.clusterPort}`;
}

export class PeerLinks extends EventEmitter<PeerLinksEvents> {
  private readonly links = new Map<string, PeerLink>();

  constructor(private readonly selfId: string) { super(); }

  /** The members of the view this node acts on (empty while fenced or stopping). */
  update(members: readonly MemberInfo[]): void {
    const seen = new Set<string>();
    const opened: PeerLink[] = [];
    for (const m of members) {
      if (m.nodeId === this.selfId) continue;
      seen.add(m.nodeId);
      const cur = this.links.get(m.nodeId);
      if (cur && cur.incarnation === m.incarnation) continue;
      if (cur) this.close(cur, 'incarnation');
      const link = this.open(m);
      this.links.set(m.nodeId, link);
      opened.push(link);
    }
    for (const link of [...this.links.values()]) if (!seen.has(link.nodeId)) this.close(link, 'left');
    for (const link of opened) this.emit('up', link);
  }

  link(nodeId: string): PeerLink | null { return this.links.get(nodeId) ?? null; }
  client(nodeId: string): grpc.Client | null { return this.links.get(nodeId)?.client ?? null; }
  channel(nodeId: string): grpc.Channel | null { return this.links.get(nodeId)?.client.getChannel() as grpc.Channel ?? null; }
  /** The current links, sorted by node id. */
  all(): PeerLink[] { return [...this.links.values()].sort((a, b) => (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0)); }

  /** Closes every link (the node stops). */
  closeAll(): void {
    for (const link of [...this.links.values()]) this.close(link, 'closed');
  }

  private open(m: MemberInfo): PeerLink {
    const address = peerAddress(m);
    const client = new grpc.Client(address, grpc.credentials.createInsecure(),
      { ...PEER_CHANNEL_OPTIONS, 'grpc.use_local_subchannel_pool': 1 });
    // Connect now rather than on the first call: the first route snapshot should not wait for a
    // TCP and HTTP/2 handshake it could have had while the view settled.
    client.getChannel().getConnectivityState(true);
    return { nodeId: m.nodeId, incarnation: m.incarnation, address, client, closed: false };
  }

  private close(link: PeerLink, reason: LinkDownReason): void {
    if (this.links.get(link.nodeId) === link) this.links.delete(link.nodeId);
    link.closed = true;
    link.client.close();
    this.emit('down', link, reason);
  }
}
