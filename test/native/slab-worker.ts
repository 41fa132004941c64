// Worker body for test/native/slab.test.ts (no-op on the main thread, see trie-worker.ts).
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { native } from '../../src/native';

type Msg =
  | { cmd: 'check'; handles: number[]; offsets: number[]; len: number }
  | { cmd: 'release'; handles: number[] }
  | { cmd: 'churn' };

function churn(holder: number): never {
  const req = new Uint32Array(3 * 32);
  const out = new Uint32Array(2 * 32);
  for (let i = 0; i < 32; i++) req.set([100, holder < 32 ? 1 << holder : 0, holder >= 32 ? 1 << (holder - 32) : 0], 3 * i);
  const handles = new Uint32Array(32);
  parentPort!.postMessage({ churning: true });
  for (;;) {
    const n = native.slabAlloc(req, 32, out);
    for (let i = 0; i < n; i++) handles[i] = out[2 * i]!;
    // Release only half: the cleanup hook must reclaim the rest when we are terminated.
    native.slabRelease(handles, n >> 1);
  }
}

if (!isMainThread && parentPort) {
  const sab = (workerData as { sab: SharedArrayBuffer }).sab;
  const holder = native.slabAttach(new Uint8Array(sab));
  const bytes = Buffer.from(sab);
  parentPort.postMessage({ holder });
  parentPort.on('message', (m: Msg) => {
    if (m.cmd === 'check') {
      // Payload written by the main thread must be visible here without a copy.
      const ok = m.handles.every((h, i) => bytes.readUInt32LE(m.offsets[i]!) === h && bytes[m.offsets[i]! + m.len - 1] === 0xab);
      parentPort!.postMessage({ ok });
    } else if (m.cmd === 'release') {
      parentPort!.postMessage({ released: native.slabRelease(Uint32Array.from(m.handles), m.handles.length) });
    } else {
      churn(holder);
    }
  });
}
