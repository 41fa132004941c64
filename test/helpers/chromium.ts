// Headless Chromium for tests (Debian's `chromium` package), driven over the DevTools protocol
// on a WebSocket (the `ws` package): no puppeteer, no browser download. One page per Browser;
// console errors, uncaught exceptions and error log entries (a failed fetch, a CSP violation)
// are collected in `errors`. Chromium missing fails with the apt line that installs it.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import WebSocket from 'ws';
import { WAIT_MS, waitUntil } from './wait';

const INSTALL = 'apt-get install -y chromium';
const CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/lib/chromium/chromium'];

export function chromiumBinary(): string {
  for (const p of CANDIDATES) {
    try { fs.accessSync(p, fs.constants.X_OK); return p; } catch { /* next */ }
  }
  throw new Error(`chromium not found (looked in ${CANDIDATES.join(', ')}): ${INSTALL}`);
}

const live = new Set<ChildProcess>();
process.on('exit', () => { for (const p of live) { try { p.kill('SIGKILL'); } catch { /* gone */ } } });

interface Pending { resolve(v: any): void; reject(e: Error): void }

export class Browser {
  /** Console errors, exceptions and error log entries of the page, as text. */
  readonly errors: string[] = [];
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly listeners: Array<(method: string, params: any) => void> = [];
  private sessionId = '';

  private constructor(private readonly proc: ChildProcess, private readonly ws: WebSocket, private readonly profile: string) {
    ws.on('message', (data) => {
      const m = JSON.parse(String(data));
      if (m.id !== undefined) {
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        if (m.error) p.reject(new Error(`DevTools: ${m.error.message}`));
        else p.resolve(m.result);
        return;
      }
      for (const l of this.listeners) l(m.method, m.params);
    });
    ws.on('close', () => { for (const p of this.pending.values()) p.reject(new Error('DevTools connection closed')); this.pending.clear(); });
  }

  /** Starts headless Chromium with a fresh profile and opens one blank page to drive. */
  static async launch(): Promise<Browser> {
    const bin = chromiumBinary();
    const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'fleetmq-chromium-'));
    const proc = spawn(bin, [
      '--headless', '--remote-debugging-port=0', `--user-data-dir=${profile}`,
      // Root in a container has no user namespace for the sandbox; the page is our own.
      '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--no-default-browser-check',
      '--disable-extensions', '--disable-background-networking', '--disable-sync', 'about:blank',
    ], { stdio: ['ignore', 'ignore', 'pipe'] });
    live.add(proc);
    proc.on('exit', () => live.delete(proc));
    let err = '';
    let exited = false;
    proc.on('exit', () => { exited = true; });
    proc.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
    try {
      await waitUntil(() => /DevTools listening on (ws:\/\/\S+)/.test(err) || exited, () => `chromium's DevTools line; stderr:\n${err}`, WAIT_MS * 3);
      const m = /DevTools listening on (ws:\/\/\S+)/.exec(err);
      if (!m) throw new Error(`chromium exited before listening; stderr:\n${err}`);
      const ws = new WebSocket(m[1], { perMessageDeflate: false });
      await new Promise<void>((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
      const b = new Browser(proc, ws, profile);
      await b.openPage();
      return b;
    } catch (e) {
      proc.kill('SIGKILL');
      fs.rmSync(profile, { recursive: true, force: true });
      throw e;
    }
  }

  /** One DevTools command (on the page's session once it is attached). */
  send(method: string, params: object = {}, session = this.sessionId, ms = WAIT_MS): Promise<any> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => { this.pending.delete(id); reject(new Error(`DevTools ${method}: no answer within ${ms} ms`)); }, ms);
      this.pending.set(id, { resolve: (v) => { clearTimeout(t); resolve(v); }, reject: (e) => { clearTimeout(t); reject(e); } });
      this.ws.send(JSON.stringify({ id, method, params, ...(session ? { sessionId: session } : {}) }));
    });
  }

  private async openPage(): Promise<void> {
    const { targetId } = await this.send('Target.createTarget', { url: 'about:blank' }, '');
    const { sessionId } = await this.send('Target.attachToTarget', { targetId, flatten: true }, '');
    this.sessionId = sessionId;
    this.listeners.push((method, p) => {
      if (method === 'Runtime.consoleAPICalled' && (p.type === 'error' || p.type === 'assert')) {
        this.errors.push(`console.${p.type}: ${p.args.map((a: { value?: unknown; description?: string }) => a.value ?? a.description).join(' ')}`);
      } else if (method === 'Runtime.exceptionThrown') {
        this.errors.push(`exception: ${p.exceptionDetails.exception?.description ?? p.exceptionDetails.text}`);
      } else if (method === 'Log.entryAdded' && p.entry.level === 'error') {
        this.errors.push(`log (${p.entry.source}): ${p.entry.text} ${p.entry.url ?? ''}`);
      }
    });
    await this.send('Runtime.enable');
    await this.send('Log.enable');
    await this.send('Page.enable');
  }

  /** Navigates and waits for the load event. */
  async goto(url: string): Promise<void> {
    let loaded = false;
    this.listeners.push((method) => { if (method === 'Page.loadEventFired') loaded = true; });
    const r = await this.send('Page.navigate', { url });
    if (r.errorText) throw new Error(`navigating to ${url}: ${r.errorText}`);
    await waitUntil(() => loaded, `the load event of ${url}`);
  }

  /** Evaluates `expression` in the page; returns its value. */
  async evaluate<T = unknown>(expression: string): Promise<T> {
    const r = await this.send('Runtime.evaluate', { expression, returnByValue: true });
    if (r.exceptionDetails) throw new Error(`evaluating ${expression}: ${r.exceptionDetails.text}`);
    return r.result.value as T;
  }

  async close(): Promise<void> {
    try { await this.send('Browser.close', {}, '', 5000); } catch { /* it may close the socket before answering */ }
    this.ws.terminate();
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      const gone = new Promise((resolve) => this.proc.once('exit', resolve));
      const t = setTimeout(() => this.proc.kill('SIGKILL'), 5000);
      await gone;
      clearTimeout(t);
    }
    fs.rmSync(this.profile, { recursive: true, force: true });
  }
}
