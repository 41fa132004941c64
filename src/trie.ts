// Typed wrapper over the native subscription trie (native/trie.h). The hot path calls
// `native.trieMatch` directly with its own reused arrays; this module holds the constants and
// a convenience class for tests, benchmarks and control-path code.
import { native, TrieStats } from './native';

/** Results of validateTopic / validateTopicBytes; mirrored from native/topic.h. */
export const TopicError = {
  OK: 0,
  /** Zero-length topic [MQTT-4.7.3-1]. */
  EMPTY: 1,
  /** More than MAX_TOPIC_BYTES UTF-8 bytes. */
  TOO_LONG: 2,
  /** Contains U+0000 [MQTT-1.5.3-2]. */
  NUL: 3,
  /** `+` or `#` in a topic name [MQTT-4.7.1-1]. */
  WILDCARD_IN_NAME: 4,
  /** `#` not alone in the last level, or `+` not alone in its level [MQTT-4.7.1-2/3]. */
  BAD_WILDCARD: 5,
  /** More than MAX_TOPIC_LEVELS levels. */
  TOO_MANY_LEVELS: 6,
  /** `$share/{group}/{filter}` with an empty group or filter, or `+`/`#` in the group [MQTT-4.8.2-1/2]. */
  BAD_SHARE: 7,
  /** Ill-formed UTF-8 or a surrogate code point (bytes only; JS strings are always well-formed) [MQTT-1.5.3-1]. */
  BAD_UTF8: 8,
} as const;
export type TopicErrorCode = (typeof TopicError)[keyof typeof TopicError];

export const MAX_TOPIC_BYTES = 65535;
export const MAX_TOPIC_LEVELS = 128;
/** Set by the trie in `options` of the one member picked per matching shared group. */
export const SHARED_PICK_FLAG = 0x80;

export interface Match {
  subscriber: number;
  options: number;
  subscriptionId: number;
}

/**
 * One native trie. The id can be posted to other threads, which wrap it with `Trie.attach`.
 * `match` grows its reused output array when the addon reports it too small.
 */
export class Trie {
  private out = new Uint32Array(1024);
  private spans = new Uint32Array(128);

  private constructor(readonly id: number) {}

  static create(): Trie {
    return new Trie(native.trieCreate());
  }

  static attach(id: number): Trie {
    return new Trie(id);
  }

  destroy(): boolean {
    return native.trieDestroy(this.id);
  }

  subscribe(filter: string, subscriber: number, options = 0, subscriptionId = 0): number {
    return native.trieSubscribe(this.id, filter, subscriber, options, subscriptionId);
  }

  unsubscribe(filter: string, subscriber: number): boolean {
    return native.trieUnsubscribe(this.id, filter, subscriber);
  }

  get generation(): number {
    return native.trieGeneration(this.id);
  }

  stats(): TrieStats {
    return native.trieStats(this.id);
  }

  setCache(enabled: boolean): void {
    native.trieSetCache(this.id, enabled);
  }

  /** Matches topics in one native call; returns one result list per topic. */
  match(topics: readonly string[]): Match[][] {
    const parts = topics.map((t) => Buffer.from(t, 'utf8'));
    const buf = Buffer.concat(parts);
    if (this.spans.length < topics.length * 2) this.spans = new Uint32Array(topics.length * 2);
    let off = 0;
    parts.forEach((p, i) => {
      this.spans[2 * i] = off;
      this.spans[2 * i + 1] = p.length;
      off += p.length;
    });
    const words = this.matchRaw(buf, this.spans, topics.length);
    return decodeMatches(this.out, words, topics.length);
  }

  /** The raw call: returns words written into `this.output` (grown and retried as needed). */
  matchRaw(buf: Uint8Array, spans: Uint32Array, count: number): number {
    for (;;) {
      const n = native.trieMatch(this.id, buf, spans, count, this.out);
      if (n >= 0) return n;
      this.out = new Uint32Array(Math.max(-n, this.out.length * 2));
    }
  }

  get output(): Uint32Array {
    return this.out;
  }
}

/** Splits the `[n, (subscriber, options, subscriptionId) × n]…` output format. */
export function decodeMatches(out: Uint32Array, words: number, count: number): Match[][] {
  const result: Match[][] = [];
  let p = 0;
  for (let i = 0; i < count; i++) {
    const n = out[p++]!;
    const list: Match[] = [];
    for (let k = 0; k < n; k++, p += 3) {
      list.push({ subscriber: out[p]!, options: out[p + 1]!, subscriptionId: out[p + 2]! });
    }
    result.push(list);
  }
  if (p !== words) throw new Error(`trieMatch output malformed: decoded ${p} of ${words} words`);
  return result;
}
