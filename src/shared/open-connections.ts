// Connections open now, per worker and listener, in one shared Int32Array: the main thread
// counts a connection in when it hands the fd to worker w (Atomics.add on [w][listener]), and
// worker w counts it out when the client's socket closes, whatever stage it reached (PROXY
// header, TLS or WebSocket handshake, MQTT). A TCP connection moved to the worker that holds
// its session is counted out by the first and in by the second; a relayed TLS / WebSocket one
// stays counted where its transport is (workers/net/relay.ts). --max-connections and a
// listener's maxConnections are checked against these sums at accept (src/main/listener.ts).
// A dead worker's row goes to zero (its fds closed with it), then counts what its replacement
// inherits from its accept ring.
//
//            listener 0   listener 1  ...  listener L-1
//  worker 0  [  open    |   open     | ... |   open    ]
//  worker 1  [  ...                                    ]
export function createOpenConnections(workers: number, listeners: number): SharedArrayBuffer {
  return new SharedArrayBuffer(4 * workers * Math.max(1, listeners));
}

export class OpenConnections {
  private readonly view: Int32Array;

  constructor(sab: SharedArrayBuffer, private readonly listeners: number) {
    this.view = new Int32Array(sab);
  }

  add(worker: number, listener: number, n: number): void {
    if (listener < 0 || listener >= this.listeners) return;
    Atomics.add(this.view, worker * this.listeners + listener, n);
  }

  /** Open on every listener of every worker. */
  total(): number {
    let s = 0;
    for (let i = 0; i < this.view.length; i++) s += Atomics.load(this.view, i);
    return s;
  }

  /** Open on one listener, over every worker. */
  onListener(listener: number): number {
    let s = 0;
    for (let i = listener; i < this.view.length; i += this.listeners) s += Atomics.load(this.view, i);
    return s;
  }

  zeroWorker(worker: number): void {
    for (let l = 0; l < this.listeners; l++) Atomics.store(this.view, worker * this.listeners + l, 0);
  }
}
