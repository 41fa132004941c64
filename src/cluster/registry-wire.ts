// What the client-id registry's nodes say to each other (README.md here, "The client-id
// registry"): the requests and answers of its control RPCs, plain objects that cross the peer
// link as JSON (a few per CONNECT at most, never per message), and the view they are judged at.

/** Who holds a client id: a node's incarnation and the sequence number of its registration. */
export interface Owner { node: string; inc: string; seq: number }

/**
 * The cluster view as the registry sees it: `vid` names the member set (sorted `node@incarnation`
 * pairs), `rev` orders views (the etcd revision this node learnt it at). Two nodes agree on the
 * homes of every id exactly when their vids are equal; two revisions of one member set (a watch
 * event and a later listing) give the same vid.
 */
export interface RegistryView {
  vid: string;
  rev: bigint;
  /** nodeId → incarnation, this node included. */
  members: Map<string, string>;
}

export function registryView(rev: bigint, members: ReadonlyArray<{ nodeId: string; incarnation: string }>): RegistryView {
  const sorted = [...members].sort((a, b) => (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0));
  return {
    vid: sorted.map((m) => `${m.nodeId}@${m.incarnation}`).join(','),
    rev,
    members: new Map(sorted.map((m) => [m.nodeId, m.incarnation])),
  };
}

/** Where a request's sender stood: its view. */
export interface At { vid: string; rev: string }

/** A CONNECT's claim, sent to the id's primary home. */
export interface RegisterReq extends At { id: string; owner: Owner }
export type RegisterAns =
  | { s: 'granted'; prev: Owner | null }
  /** The home is at a later view: the sender waits for its own view to move, then tries again. */
  | { s: 'stale'; rev: string }
  | { s: 'refused'; why: string };

/**
 * After a view change (or a rejoin), an owner tells the ids' new homes what it holds. An entry
 * already there wins (it was registered meanwhile by a live CONNECT): those ids come back in `taken`.
 */
export interface AssertReq extends At { node: string; inc: string; items: Array<{ id: string; seq: number }> }
export type AssertAns = { s: 'ok'; taken: string[] } | { s: 'stale'; rev: string } | { s: 'refused'; why: string };

/**
 * "End your session of `id` registered at `seq` or before": from the new owner to the previous
 * one. `keep`: the new CONNECT continues the session (clean start 0): hand it over (handover.ts).
 */
export interface ReleaseReq { id: string; target: Owner; by: Owner; keep?: boolean }
/** `handover`: the session's snapshot (handover-wire.ts) and the id to finish the handover with. */
export type ReleaseAns = { s: 'released' | 'stale' | 'not-held'; handover?: Handed };
export interface Handed { hid: string; session: string }

/** "I have re-registered what I hold for this view": lifts the homes' barrier for that view. */
export interface SyncedReq extends At { node: string; inc: string }

/** Sessions that ended: their homes forget them (only if still registered at that seq). */
export interface UnregisterReq { node: string; inc: string; items: Array<{ id: string; seq: number }> }

/** How the registry reaches another node's registry (the peer link; in-process in unit tests). */
export interface RegistryTransport {
  register(node: string, req: RegisterReq): Promise<RegisterAns>;
  assert(node: string, req: AssertReq): Promise<AssertAns>;
  release(node: string, req: ReleaseReq): Promise<ReleaseAns>;
  synced(node: string, req: SyncedReq): Promise<void>;
  unregister(node: string, req: UnregisterReq): Promise<void>;
}
