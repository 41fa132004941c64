// The broker's view of the native topic trie (native/README.md): one process-wide trie, reached
// by id from every thread. Subscriber ids pack the owning worker and its session slot so a
// match result tells a worker at once which subscribers are its own.
import { native } from '../native';

type Fn = (...args: never[]) => unknown;
const fn = <T extends Fn>(name: string): T => {
  const f = native[name];
  if (typeof f !== 'function') throw new Error(`fleetmq native addon lacks ${name}(); rebuild with \`npm run build\``);
  return f as T;
};

export const WORKER_SHIFT = 22;
export const SLOT_MASK = (1 << WORKER_SHIFT) - 1;
export const subscriberId = (worker: number, slot: number) => ((worker << WORKER_SHIFT) | slot) >>> 0;
export const subscriberWorker = (sub: number) => sub >>> WORKER_SHIFT;
export const subscriberSlot = (sub: number) => sub & SLOT_MASK;

/** Subscription option bits carried in the trie's options byte. */
export const OPT_QOS_MASK = 0x03;
export const OPT_NO_LOCAL = 0x04;
export const OPT_RETAIN_AS_PUBLISHED = 0x08;
/** The subscriber's session is persistent: QoS >= 1 messages to it are stored before the ack. */
export const OPT_PERSISTENT = 0x40;
export const OPT_SHARED = 0x80;

export const topicIndex = {
  create: (): number => fn<() => number>('trieCreate')(),
  /** Only once no thread uses it any more (a broker's last step when it stops). */
  destroy: (id: number): boolean => fn<(a: number) => boolean>('trieDestroy')(id),
  subscribe: (id: number, filter: string, sub: number, opts: number, subId: number): number =>
    fn<(a: number, b: string, c: number, d: number, e: number) => number>('trieSubscribe')(id, filter, sub, opts, subId),
  unsubscribe: (id: number, filter: string, sub: number): boolean =>
    fn<(a: number, b: string, c: number) => boolean>('trieUnsubscribe')(id, filter, sub),
  match: (id: number, buf: Uint8Array, spans: Uint32Array, count: number, out: Uint32Array): number =>
    fn<(a: number, b: Uint8Array, c: Uint32Array, d: number, e: Uint32Array) => number>('trieMatch')(id, buf, spans, count, out),
  validate: (topic: string, isFilter: boolean): number =>
    fn<(a: string, b: boolean) => number>('validateTopic')(topic, isFilter),
};
