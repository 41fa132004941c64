// A listener's connection rate (--max-connection-rate, "maxConnectionRate"): a token bucket of
// one second's worth, refilled continuously. A connection that finds no token waits here,
// accepted but unread (the listener's sockets are made with pauseOnConnect), and is handed on
// as tokens come: none is dropped for arriving fast.
//
// Why a waiting list and not "stop accepting": Node has no public way to stop a listening
// server from accepting while keeping its port (the handle's readStop is private), and closing
// then listening again resets every connection in the kernel's backlog and leaves a moment in
// which another process can take the port. The cost is one fd per waiting connection, so the
// list is bounded (ACCEPT_WAIT_MAX, the listen backlog); past it a connection is closed and
// counted (C_REFUSED_RATE_QUEUE): the one case where arriving fast is refused.
import type * as net from 'node:net';
import { C_ACCEPT_WAITED, C_REFUSED_RATE_QUEUE } from '../shared/counters';

export const ACCEPT_WAIT_MAX = 4096;

export class AcceptRate {
  private tokens: number;
  private last = Date.now();
  private readonly waiting: net.Socket[] = [];
  private head = 0;
  private timer: NodeJS.Timeout | null = null;

  /** `rate`: connections per second (> 0; 0 after setRate(0) lets every waiting one go); `pass`: hands one on. */
  constructor(private rate: number, private readonly pass: (s: net.Socket) => void, private readonly count: (counter: number, n: number) => void) {
    this.tokens = rate;
  }

  /** SIGHUP: a new rate; 0 = no limit (whoever waits goes now). */
  setRate(rate: number): void {
    this.rate = rate;
    if (rate === 0) {
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
      for (let i = this.head; i < this.waiting.length; i++) this.pass(this.waiting[i]);
      this.waiting.length = 0;
      this.head = 0;
      return;
    }
    this.tokens = Math.min(this.tokens, rate);
  }

  offer(s: net.Socket): void {
    if (this.rate === 0) { this.pass(s); return; }
    this.refill();
    if (this.head === this.waiting.length && this.tokens >= 1) { this.tokens--; this.pass(s); return; }
    if (this.waiting.length - this.head >= ACCEPT_WAIT_MAX) { this.count(C_REFUSED_RATE_QUEUE, 1); s.destroy(); return; }
    this.waiting.push(s);
    this.count(C_ACCEPT_WAITED, 1);
    this.schedule();
  }

  /** Waiting connections are closed (the listener is closing). */
  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    for (let i = this.head; i < this.waiting.length; i++) this.waiting[i].destroy();
    this.waiting.length = 0;
    this.head = 0;
  }

  private refill(): void {
    const now = Date.now();
    this.tokens = Math.min(this.rate, this.tokens + ((now - this.last) * this.rate) / 1000);
    this.last = now;
  }

  private schedule(): void {
    if (this.timer) return;
    const ms = Math.max(1, Math.ceil(((1 - this.tokens) * 1000) / this.rate));
    this.timer = setTimeout(() => { this.timer = null; this.drain(); }, ms);
  }

  private drain(): void {
    this.refill();
    while (this.head < this.waiting.length && this.tokens >= 1) {
      this.tokens--;
      const s = this.waiting[this.head];
      this.waiting[this.head++] = undefined as unknown as net.Socket;
      this.pass(s);
    }
    if (this.head === this.waiting.length) { this.waiting.length = 0; this.head = 0; return; }
    if (this.head > 1024) { this.waiting.splice(0, this.head); this.head = 0; }
    this.schedule();
  }
}
