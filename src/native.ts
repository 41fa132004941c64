// The single loader for the addon (as better-sqlite3 does): every thread requires this module and
// gets the same process-wide native state (native/README.md).
import * as path from 'node:path';

export interface TrieStats {
  subscriptions: number;
  /** Distinct real filters (a `$share/g/f` counts toward `f`) holding any subscription. */
  filters: number;
  sharedGroups: number;
}

export interface TopicConstants {
  OK: number;
  EMPTY: number;
  TOO_LONG: number;
  NUL: number;
  WILDCARD_IN_NAME: number;
  BAD_WILDCARD: number;
  TOO_MANY_LEVELS: number;
  BAD_SHARE: number;
  BAD_UTF8: number;
  MAX_BYTES: number;
  MAX_LEVELS: number;
}

/** Exports of native/addon.cc; semantics in native/README.md and src/trie.ts. */
export interface NativeAddon {
  dupFd(fd: number): number;
  closeFd(fd: number): void;
  /** socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC): [mine, theirs] (native/addon.cc SocketPair). */
  socketPair(): [number, number];
  /** `_exit(code)`: ends the process without Node's teardown (see native/addon.cc ExitNow). */
  exitNow(code: number): never;

  validateTopic(topic: string, isFilter: boolean): number;
  validateTopicBytes(buf: Uint8Array, off: number, len: number, isFilter: boolean): number;
  topicConstants: TopicConstants;

  trieCreate(): number;
  trieDestroy(id: number): boolean;
  /** 1 added, 0 replaced, negative = -TopicError for an invalid filter. */
  trieSubscribe(id: number, filter: string, subscriber: number, options: number, subscriptionId: number): number;
  trieUnsubscribe(id: number, filter: string, subscriber: number): boolean;
  trieMatch(id: number, buf: Uint8Array, spans: Uint32Array, count: number, out: Uint32Array): number;
  trieGeneration(id: number): number;
  trieStats(id: number): TrieStats;
  /** Per-thread match cache on/off for this trie (tests run both ways). */
  trieSetCache(id: number, enabled: boolean): void;
  /** Runs a reclamation pass and returns how many retired objects still wait for readers. */
  epochPending(): number;

  /** CPU nanoseconds used by the calling thread (CLOCK_THREAD_CPUTIME_ID); for benchmarks. */
  threadCpuNs(): number;

  /** Attaches this thread to the process slab (a Uint8Array over the whole SAB); returns its holder index. */
  slabAttach(view: Uint8Array): number;
  /** Releases everything this thread holds and unregisters it (also done by the env cleanup hook). */
  slabDetach(): void;
  /** This thread's holder index, or -1 when not attached. */
  slabHolder(): number;
  /** req: count × [size, holdersLo, holdersHi]; out: count × [handle, byteOffset]. Returns how many were allocated (stops at the first failure). */
  slabAlloc(req: Uint32Array, count: number, out: Uint32Array): number;
  /** Drops this thread's reference on each handle; returns how many were released (the rest were stale or not held). */
  slabRelease(handles: Uint32Array, count: number): number;
  /** Makes `holder` hold each handle too (the caller must hold them); returns how many were added. */
  slabAddHolder(handles: Uint32Array, count: number, holder: number): number;
  slabStats(): { inUse: number[]; holders: number };
  /** Layout constants as compiled into native/slab.h (checked against src/slab-layout.ts). */
  slabLayout: Record<string, number>;

  [name: string]: unknown;
}

function load(): NativeAddon {
  const root = path.resolve(__dirname, '..', '..');
  // FLEETMQ_NATIVE points at another build (e.g. build-sanitize/Release/fleetmq.node, see
  // native/README.md) so the same tests can run against the ASAN/UBSAN addon.
  const override = process.env.FLEETMQ_NATIVE;
  const candidates = [
    ...(override ? [path.resolve(override)] : []),
    path.join(root, 'build', 'Release', 'fleetmq.node'),
    path.join(root, 'build', 'Debug', 'fleetmq.node'),
  ];
  const errors: string[] = [];
  for (const file of candidates) {
    try {
      return require(file) as NativeAddon;
    } catch (err) {
      errors.push(`${file}: ${(err as Error).message}`);
    }
  }
  throw new Error(`fleetmq native addon not built; run \`npm install\` (or \`npm run build\`).\n${errors.join('\n')}`);
}

export const native: NativeAddon = load();
