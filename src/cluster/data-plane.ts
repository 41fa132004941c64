// The cluster's data plane as the coordinator runs it: route sync (routes.ts) and forwarding
// (forwarding.ts) on the node's peer server and peer links. Built before the node joins, so
// their services are on the peer server when peers first see this node.
import type { ClusterNode } from './node';
import { NodeIndex } from './node-tokens';
import { RouteSync } from './routes';
import { Forwarding } from './forwarding';
import type { ClusterForwardMsg } from '../shared/messages';
import { COUNTERS_PER_WORKER } from '../shared/counters';

export interface DataPlaneOptions {
  trieId: number;
  workers: number;
  queueBytes: number;
  counters: SharedArrayBuffer | null;
  post(w: number, m: ClusterForwardMsg, transfer?: ArrayBuffer[]): boolean;
  log(line: string): void;
}

export class ClusterDataPlane {
  readonly nodes = new NodeIndex();
  readonly routes: RouteSync;
  readonly forwarding: Forwarding;

  constructor(node: ClusterNode, o: DataPlaneOptions) {
    const gauges = o.counters ? new Float64Array(o.counters, 0, COUNTERS_PER_WORKER) : null;
    const incarnation = () => node.incarnation;
    this.routes = new RouteSync({ selfId: node.nodeId, incarnation, trieId: o.trieId, nodes: this.nodes, links: node.peers, gauges, log: o.log });
    this.forwarding = new Forwarding({
      selfId: node.nodeId, incarnation, nodes: this.nodes, links: node.peers, workers: o.workers,
      post: o.post, queueBytes: o.queueBytes, gauges,
    });
    node.peerServer.addService(...this.routes.service());
    node.peerServer.addService(...this.forwarding.service());
    // Forwarding first on the way up (a route must not name a node without a queue) and last
    // on the way down.
    node.peers.on('up', (link) => { this.forwarding.linkUp(link); this.routes.linkUp(link); });
    node.peers.on('down', (link) => { this.routes.linkDown(link); this.forwarding.linkDown(link); });
  }

  close(): void {
    this.routes.close();
    this.forwarding.close();
  }
}
