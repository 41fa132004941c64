// 43: the status page at / in headless Chromium (Debian's `chromium`, driven over the DevTools
// protocol): it loads, shows the live connection count, which changes when an MQTT client
// connects and again when it leaves, fills the per-worker table, and logs no console error,
// exception or failed request. Also /status.json itself.
import { describe, test, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import { launchBroker, Broker, HTTP_LISTEN_RE } from '../helpers/broker';
import { clientPool, end } from '../helpers/clients';
import { request } from '../helpers/http';
import { Browser, chromiumBinary } from '../helpers/chromium';
import { WAIT_MS } from '../helpers/wait';

describe('43 status page with --workers 2', () => {
  let b: Broker;
  let http: number;
  let browser: Browser | null = null;
  const pool = clientPool('after');

  before(async () => {
    chromiumBinary(); // fails at once with the install line when missing
    b = await launchBroker(2, ['--durability', 'none']);
    http = Number((await b.waitForOutput(HTTP_LISTEN_RE))[2]);
  });
  after(async () => {
    await pool.cleanup();
    if (browser) await browser.close();
    if (b) assert.equal(await b.stop(), 0, `broker exit code; output:\n${b.output()}`);
  });

  test('/status.json: connections, clients, per-worker rows, no cluster', { timeout: 60000 }, async () => {
    const r = await request(http, '/status.json');
    assert.equal(r.status, 200);
    assert.match(String(r.headers['content-type']), /^application\/json/);
    const s = JSON.parse(r.body);
    assert.equal(s.workers.length, 2);
    assert.equal(typeof s.connections, 'number');
    assert.equal(typeof s.messages.received, 'number');
    assert.equal(s.cluster, null);
    const page = await request(http, '/');
    assert.equal(page.status, 200);
    assert.match(String(page.headers['content-type']), /^text\/html/);
  });

  test('the page shows the live connection count, it follows a client connecting and leaving, no console errors', { timeout: 120000 }, async () => {
    browser = await Browser.launch();
    await browser.goto(`http://127.0.0.1:${http}/`);
    const count = () => browser!.evaluate<string>('document.getElementById("connections").textContent');
    // The page fills itself from /status.json, once a second.
    let text = '';
    const until = async (want: string, what: string) => {
      const deadline = Date.now() + WAIT_MS * 2;
      for (;;) {
        text = await count();
        if (text === want) return;
        if (Date.now() > deadline) throw new Error(`${what}: the page shows ${JSON.stringify(text)} connections, expected ${want}; console errors: ${JSON.stringify(browser!.errors)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    await until('0', 'before any client');
    const { client } = await pool.connect(b);
    await until('1', 'after a client connected');
    assert.equal(await browser.evaluate('document.querySelectorAll("#workers tbody tr").length'), 2, 'one row per worker');
    assert.equal(await browser.evaluate('document.getElementById("cluster").textContent'), 'single node (no --etcd)');
    assert.equal(await browser.evaluate('document.getElementById("error").textContent'), '', 'the page refreshed without an error');
    await end(client);
    await until('0', 'after the client left');
    assert.deepEqual(browser.errors, [], 'no console errors, exceptions or failed requests');
    // The collector itself sees errors (else the assertion above proves nothing).
    await browser.evaluate('console.error("probe error"); setTimeout(() => { throw new Error("probe exception"); }, 0); fetch("/no-such-path").catch(() => {}); 1');
    const deadline = Date.now() + WAIT_MS;
    while (browser.errors.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const seen: string[] = [...(browser as Browser).errors];
    assert.ok(seen.some((e) => e.includes('probe error')), JSON.stringify(seen));
    assert.ok(seen.some((e) => e.includes('probe exception')), JSON.stringify(seen));
    assert.ok(seen.some((e) => e.includes('404')), JSON.stringify(seen));
  });
});
