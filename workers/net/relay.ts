// A TLS or WebSocket connection whose continuing session lives on another worker: its TLS /
// WebSocket state is JS objects in this worker and cannot move, yet the session must not move
// either (workers/README.md, "Sessions"). So this worker keeps the transport and relays the
// plain MQTT bytes both ways through a Unix socket pair; the owner adopts the other end as it
// adopts a TCP fd, with the bytes already read replayed. Costs: two fds, one more write and read
// of every byte each way, and the relay's CPU here (workers/README.md, "TLS and WebSocket").
import * as net from 'node:net';
import { native } from '../../src/native';
import type { Transport } from './connection';

/** How long a side that ended may take to flush what it still has before it is destroyed. */
const LINGER_MS = 2000;

/** Starts relaying `t` and returns the fd for the owner (throws if no socket pair can be made). */
export function relay(t: Transport): number {
  const [mine, theirs] = native.socketPair();
  let local: net.Socket;
  try {
    local = new net.Socket({ fd: mine, readable: true, writable: true });
  } catch (err) {
    native.closeFd(mine);
    native.closeFd(theirs);
    throw err;
  }
  const stream = t as unknown as NodeJS.ReadWriteStream & Transport;
  // pipe() carries backpressure both ways (a full side pauses the other's reading) and ends
  // the destination when the source ends.
  stream.pipe(local);
  local.pipe(stream);
  const noop = () => { /* 'close' follows */ };
  local.on('error', noop);
  t.on('error', noop);
  // Both sides close together, each after what the other sent has gone through: the client
  // gone (its DISCONNECT relayed), the owner sees EOF and the session goes offline; the owner
  // done (DISCONNECT, takeover), the client gets what was sent, then a close.
  t.once('close', () => {
    local.end();
    setTimeout(() => local.destroy(), LINGER_MS).unref();
  });
  local.once('close', () => {
    t.end();
    setTimeout(() => t.destroy(), LINGER_MS).unref();
  });
  t.resume();
  return theirs;
}
