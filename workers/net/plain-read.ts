// Plain TCP sockets read without Node's stream machinery: `net.Socket`'s `onread` option has
// libuv read into one buffer this worker owns and calls us with the byte count, so a read costs
// no 64 KiB allocation and reallocation, no Readable push, no 'data' emit. The bytes are copied
// out at once into an exact-size Buffer (small reads share Node's 8 KiB pool): the read buffer is
// overwritten by the next socket's read while the turn's batch (routing/router.ts) still holds
// views of what this one carried. pause() / resume() keep working: on such a socket they stop
// and restart the kernel reads. TLS and WebSocket connections keep their stream path.
import * as net from 'node:net';

/** Where a plain socket's bytes go (the Connection over it, from its constructor on). */
export const READ_SINK = Symbol('readSink');

type Sink = (chunk: Buffer) => void;
interface PlainSocket extends net.Socket {
  /** null until the Connection attaches. */
  [READ_SINK]?: Sink | null;
  /** Bytes read before a sink was attached (not expected: sockets get one in the same tick). */
  early?: Buffer[];
}

/** One per worker thread: every plain socket's reads land here, one at a time. */
const READ_BUF = Buffer.allocUnsafe(64 * 1024);

function onRead(this: PlainSocket, n: number, buf: Buffer): boolean {
  const chunk = Buffer.allocUnsafe(n);
  buf.copy(chunk, 0, 0, n);
  const sink = this[READ_SINK];
  if (sink) sink(chunk);
  else (this.early ??= []).push(chunk);
  return true;
}

/** A socket over `fd` that reads through READ_BUF (see above). */
export function plainSocket(fd: number): net.Socket {
  // @types/node declares `onread` for net.connect() only; Node 20's Socket constructor takes it.
  const opts = { fd, readable: true, writable: true, onread: { buffer: READ_BUF, callback: onRead } } as net.SocketConstructorOpts;
  const s: PlainSocket = new net.Socket(opts);
  s[READ_SINK] = null;
  return s;
}

/** Sends `socket`'s reads to `sink` from now on; false if plainSocket did not make it (it emits 'data'). */
export function attachReads(socket: object, sink: Sink): boolean {
  const s = socket as PlainSocket;
  if (!(READ_SINK in s)) return false;
  s[READ_SINK] = sink;
  const early = s.early;
  if (early !== undefined) {
    s.early = undefined;
    queueMicrotask(() => { for (const b of early) sink(b); });
  }
  return true;
}
