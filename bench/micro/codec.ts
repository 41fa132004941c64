// PUBLISH framing and encoding, per message: the broker's fast path (workers/protocol/
// publish-codec.ts) against mqtt-packet, which src/README.md ("Measured") has at ~1M parses/s and
// ~2M generates/s per core; plus the load generator's own template framing, which must stay far
// cheaper than any broker it measures. Each task handles a batch of 100 64-byte messages so
// per-call overhead of the harness does not dominate; figures are reported per message.
//
//   npm run bench:micro            (all micro-benchmarks)
//   node dist/bench/micro/codec.js (this file alone)
import { Bench } from 'tinybench';
import * as mqttPacket from 'mqtt-packet';
import { parsePublish, encodePublish, PublishFrame, NO_EXTRAS } from '../../workers/protocol/publish-codec';
import { Framer, FrameSink } from '../load/framer';
import { encodePublishTemplate } from '../load/protocol';

const BATCH = 100;
const TOPIC = 'bench/pair/07';
const PAYLOAD = Buffer.alloc(64, 7);

function framesOf(version: 4 | 5, qos: 0 | 1): Buffer {
  const one = (i: number) => mqttPacket.generate({
    cmd: 'publish', topic: TOPIC, payload: PAYLOAD, qos, dup: false, retain: false,
    messageId: qos > 0 ? i + 1 : undefined, ...(version === 5 ? { properties: {} } : {}),
  } as mqttPacket.IPublishPacket, { protocolVersion: version });
  return Buffer.concat(Array.from({ length: BATCH }, (_, i) => one(i)));
}

/** Splits frames like a worker does and hands each PUBLISH to the fast-path parser. */
function brokerParseAll(buf: Buffer, v5: boolean, f: PublishFrame): number {
  let off = 0;
  let n = 0;
  while (off < buf.length) {
    let len = 0;
    let mul = 1;
    let p = off + 1;
    for (;;) {
      const b = buf[p++];
      len += (b & 0x7f) * mul;
      mul *= 128;
      if ((b & 0x80) === 0) break;
    }
    if (parsePublish(buf[off], buf, p, p + len, v5, f) === 0) n++;
    off = p + len;
  }
  return n;
}

class CountSink implements FrameSink {
  n = 0;
  onFrame(buf: Buffer, _first: number, start: number): void {
    this.n += buf.readUInt16BE(start);
  }
}

function addTasks(bench: Bench, version: 4 | 5, qos: 0 | 1): void {
  const tag = `v${version === 5 ? '5' : '3.1.1'} qos${qos}`;
  const frames = framesOf(version, qos);
  const frame = new PublishFrame();
  const topicBuf = Buffer.from(TOPIC);
  const parser = mqttPacket.parser({ protocolVersion: version });
  let parsed = 0;
  parser.on('packet', () => { parsed++; });
  const template = encodePublishTemplate(TOPIC, qos, PAYLOAD.length, version);
  const framer = new Framer();
  const sink = new CountSink();

  bench.add(`parse   broker fast path    ${tag}`, () => { brokerParseAll(frames, version === 5, frame); });
  bench.add(`parse   mqtt-packet         ${tag}`, () => { parser.parse(frames); });
  bench.add(`frame   load generator      ${tag}`, () => { framer.push(frames, sink); });
  bench.add(`encode  broker fast path    ${tag}`, () => {
    for (let i = 0; i < BATCH; i++) encodePublish(topicBuf, PAYLOAD, null, qos, false, false, i + 1, version === 5, NO_EXTRAS);
  });
  bench.add(`encode  mqtt-packet         ${tag}`, () => {
    for (let i = 0; i < BATCH; i++) {
      mqttPacket.generate({ cmd: 'publish', topic: TOPIC, payload: PAYLOAD, qos, dup: false, retain: false, messageId: qos > 0 ? i + 1 : undefined } as mqttPacket.IPublishPacket, { protocolVersion: version });
    }
  });
  bench.add(`encode  load template batch ${tag}`, () => {
    const out = Buffer.allocUnsafe(BATCH * template.bytes.length);
    for (let i = 0, base = 0; i < BATCH; i++, base += template.bytes.length) {
      template.bytes.copy(out, base);
      out.writeUInt32LE(i, base + template.payloadOffset + 4);
      if (template.packetIdOffset >= 0) out.writeUInt16BE(i + 1, base + template.packetIdOffset);
    }
  });
  void parsed;
}

export async function main(): Promise<void> {
  const bench = new Bench({ time: 400, warmupTime: 100 });
  addTasks(bench, 4, 0);
  addTasks(bench, 5, 1);
  await bench.run();
  console.log(`PUBLISH codec, 64-byte payload, per message (tasks run batches of ${BATCH}):`);
  const rows = bench.tasks.map((t) => {
    // Both columns from the mean batch time, so they agree with each other (ms per batch).
    const r = t.result as unknown as { latency?: { mean: number; rme: number } } | undefined;
    const ns = r?.latency ? (r.latency.mean * 1e6) / BATCH : NaN;
    return { task: t.name, 'M msg/s': (1e3 / ns).toFixed(2), 'ns/msg': ns.toFixed(0), '±%': r?.latency ? r.latency.rme.toFixed(1) : '—' };
  });
  console.table(rows);
}

if (require.main === module) main().catch((err) => { console.error(err); process.exit(1); });
