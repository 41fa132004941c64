// Rendezvous (highest-random-weight) hashing: the home nodes of a client id over a member set.
// Every node computes the same answer from the same member list, with no table to share, and a
// member joining or leaving moves only the ids whose best score it wins or held (about 1/N of
// them), which is what keeps a view change cheap for the registry (registry.ts).

/** FNV-1a over the UTF-16 code units: cheap, and only an input to the mixer below. */
function fnv1a(s: string, seed = 0x811c9dc5): number {
  let h = seed >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** MurmurHash3's finaliser: spreads every input bit over the output, so scores look independent. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A member's precomputed salt (hash of its id), so scoring an id costs one hash of the id. */
export interface Scored { nodeId: string; salt: number }

export function salted(nodeIds: readonly string[]): Scored[] {
  return nodeIds.map((nodeId) => ({ nodeId, salt: fmix32(fnv1a(nodeId, 0x9747b28c)) }));
}

/** The score of `clientId` on one member: two rounds so the id's and the node's bits mix. */
function score(idHash: number, salt: number): number {
  return fmix32(Math.imul(idHash ^ salt, 0x9e3779b1) ^ (salt >>> 7));
}

/**
 * The id's home nodes, best first: `[primary, replica, …]`, at most `count` of them. Ties (equal
 * scores) are broken by node id so every node agrees.
 */
export function homes(clientId: string, members: readonly Scored[], count = 2): string[] {
  const idHash = fnv1a(clientId);
  const ranked = members.map((m) => ({ id: m.nodeId, s: score(idHash, m.salt) }));
  ranked.sort((a, b) => (b.s - a.s) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return ranked.slice(0, count).map((r) => r.id);
}

/** The id's primary home (the registry's serialising node), or null for an empty member set. */
export function primary(clientId: string, members: readonly Scored[]): string | null {
  if (members.length === 0) return null;
  const idHash = fnv1a(clientId);
  let best = members[0].nodeId;
  let bestScore = score(idHash, members[0].salt);
  for (let i = 1; i < members.length; i++) {
    const s = score(idHash, members[i].salt);
    if (s > bestScore || (s === bestScore && members[i].nodeId < best)) { best = members[i].nodeId; bestScore = s; }
  }
  return best;
}
