// A broker's /metrics as numbers: its HTTP port read from the line it prints, the exposition
// parsed by the strict parser (prom-text.ts), one sample picked by family and labels.
import * as assert from 'node:assert/strict';
import { HTTP_LISTEN_RE, type Broker } from './broker';
import { request } from './http';
import { parsePromText, sampleValue } from './prom-text';
import { delay, WAIT_MS } from './wait';

export async function metric(b: Pick<Broker, 'waitForOutput'>, family: string, labels: Record<string, string> = {}): Promise<number> {
  const port = Number((await b.waitForOutput(HTTP_LISTEN_RE))[2]);
  return sampleValue(parsePromText((await request(port, '/metrics')).body), family, labels);
}

/** Polls `family` until it reaches `atLeast` (bounded by WAIT_MS); returns the value seen. */
export async function metricAtLeast(b: Pick<Broker, 'waitForOutput'>, family: string, labels: Record<string, string>, atLeast: number): Promise<number> {
  const deadline = Date.now() + WAIT_MS;
  let v = await metric(b, family, labels);
  while (v < atLeast && Date.now() < deadline) { await delay(50); v = await metric(b, family, labels); }
  assert.ok(v >= atLeast, `${family}${JSON.stringify(labels)} reached ${v}, expected at least ${atLeast}`);
  return v;
}

/** Polls `family` (every 200 ms, bounded by `ms`) until `ok` holds; returns the value seen. */
export async function metricUntil(b: Pick<Broker, 'waitForOutput'>, family: string, ok: (v: number) => boolean, what: string, ms = WAIT_MS): Promise<number> {
  const deadline = Date.now() + ms;
  let v = await metric(b, family);
  while (!ok(v) && Date.now() < deadline) { await delay(200); v = await metric(b, family); }
  assert.ok(ok(v), `${family} is ${v} after ${ms} ms: expected ${what}`);
  return v;
}
