// GET /livez and GET /readyz, unauthenticated, for process supervisors and load balancers.
// - /livez: 200 while every worker's and the coordinator's heartbeat (src/shared/heartbeats.ts)
//   is fresh; 503 naming each thread whose heartbeat is older than STALE_AFTER_MS (its event
//   loop is stuck, or the thread is gone and not replaced). A thread that has not beaten yet is
//   starting, not stale. The main thread answers the request itself, so it is alive.
// - /readyz: 503 until the store is loaded and the MQTT listener is bound, 200 while serving
//   (unless a hold says why not: a cluster member catching up with its peers' retained messages),
//   503 again from the moment shutdown starts (draining), so a load balancer stops sending new
//   clients before the listener closes. A cluster member (--etcd) joins its cluster and takes
//   its peers' banned list before it serves, so "serving" means joined too; while it is fenced
//   (not counting itself in the cluster, refusing CONNECTs) /readyz is 503 again, until it rejoins.
import { readHeartbeat, coordinatorSlot, monotonicMs, STALE_AFTER_MS } from '../shared/heartbeats';

export type Phase = 'starting' | 'serving' | 'draining';

/** What the main thread knows about the broker's phase; broker.ts moves it forward. */
export class Readiness {
  private current: Phase = 'starting';
  private readonly holds: Array<() => string | null> = [];
  get phase(): Phase { return this.current; }
  /** A condition that keeps a serving broker not ready while it returns a reason (e.g. a cluster catch-up). */
  hold(reason: () => string | null): void { this.holds.push(reason); }
  /** The first hold's reason, or null. */
  held(): string | null {
    for (const h of this.holds) { const r = h(); if (r !== null) return r; }
    return null;
  }
  serving(): void { if (this.current === 'starting') this.current = 'serving'; }
  draining(): void { this.current = 'draining'; }
}

export interface Answer { status: number; body: string }

export function readyz(readiness: Readiness, cluster: { fenced: boolean } | null = null): Answer {
  switch (readiness.phase) {
    case 'serving': {
      if (cluster?.fenced) return { status: 503, body: 'fenced: not a member of the cluster right now (refusing connections until it rejoins)\n' };
      const held = readiness.held();
      return held === null ? { status: 200, body: 'ready\n' } : { status: 503, body: `${held}\n` };
    }
    case 'starting': return { status: 503, body: 'starting: the store is loading, the cluster is being joined or the MQTT listener is not bound yet\n' };
    case 'draining': return { status: 503, body: 'draining: shutting down, not accepting connections\n' };
  }
}

export function livez(heartbeats: SharedArrayBuffer, workers: number, nowMs = monotonicMs()): Answer {
  const stale: string[] = [];
  const check = (name: string, slot: number) => {
    const b = readHeartbeat(heartbeats, slot, nowMs);
    if (b.ageMs !== null && b.ageMs > STALE_AFTER_MS) stale.push(`${name} (last heartbeat ${(b.ageMs / 1000).toFixed(1)} s ago)`);
  };
  for (let w = 0; w < workers; w++) check(`worker ${w}`, w);
  check('coordinator', coordinatorSlot(workers));
  if (stale.length === 0) return { status: 200, body: 'ok\n' };
  return { status: 503, body: `stale: ${stale.join(', ')}\n` };
}
