// Worker body for the threaded trie tests. Does nothing on the main thread, because
// `node --test <dir>` may load every .js file below a test/ folder.
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { native } from '../../src/native';
import { Trie, SHARED_PICK_FLAG } from '../../src/trie';

interface Job {
  mode: 'picks' | 'match' | 'churn' | 'spin';
  trieId: number;
  topic?: string;
  calls?: number;
  stable?: number;
  seed?: number;
}

function picks(job: Job): Record<string, number> {
  const trie = Trie.attach(job.trieId);
  const counts: Record<string, number> = {};
  for (let i = 0; i < job.calls!; i++) {
    for (const m of trie.match([job.topic!])[0]!) {
      if (m.options & SHARED_PICK_FLAG) counts[m.subscriber] = (counts[m.subscriber] ?? 0) + 1;
    }
  }
  return counts;
}

// Stable subscriber k subscribes to `stable/k/#` before the workers start; every topic
// `stable/k/...` must always report it, whatever the churn does to neighbouring paths.
function matchStable(job: Job): { errors: string[]; matched: number } {
  const trie = Trie.attach(job.trieId);
  const errors: string[] = [];
  const topics = Array.from({ length: 64 }, (_, i) => `stable/${i % job.stable!}/x/${i}`);
  let matched = 0;
  for (let c = 0; c < job.calls!; c++) {
    const res = trie.match(topics);
    res.forEach((list, i) => {
      const k = i % job.stable!;
      if (!list.some((m) => m.subscriber === 1_000_000 + k) && errors.length < 10) {
        errors.push(`call ${c}: ${topics[i]} missing stable subscriber ${k}`);
      }
      matched++;
    });
  }
  return { errors, matched };
}

// Subscribes and unsubscribes overlapping filters (incl. shared groups) and ends with all of
// its own subscriptions removed.
function churn(job: Job): { ops: number } {
  const trie = Trie.attach(job.trieId);
  const filters = ['stable/+/x/#', 'stable/#', '+/+/x/+', '$share/c/stable/+/x/#', 'stable/1/x', 'churn/a/b'];
  let ops = 0;
  let seed = job.seed! >>> 0;
  for (let i = 0; i < job.calls!; i++) {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    const f = `${filters[seed % filters.length]}`;
    const sub = 2_000_000 + (seed >>> 8) % 50;
    trie.subscribe(f, sub, 0, 0);
    ops++;
    if (i % 3 !== 0) {
      trie.unsubscribe(f, sub);
      ops++;
    }
  }
  for (const f of filters) for (let s = 0; s < 50; s++) trie.unsubscribe(f, 2_000_000 + s);
  return { ops };
}

function spin(job: Job): never {
  const buf = Buffer.from(job.topic!);
  const spans = new Uint32Array([0, buf.length]);
  const out = new Uint32Array(4096);
  parentPort!.postMessage('spinning');
  for (;;) native.trieMatch(job.trieId, buf, spans, 1, out);
}

if (!isMainThread && parentPort) {
  const job = workerData as Job;
  switch (job.mode) {
    case 'picks': parentPort.postMessage(picks(job)); break;
    case 'match': parentPort.postMessage(matchStable(job)); break;
    case 'churn': parentPort.postMessage(churn(job)); break;
    case 'spin': spin(job);
  }
}
