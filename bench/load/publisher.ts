// A publishing connection. Its PUBLISH packets are encoded once, at setup, into a template
// holding one packet per topic; a batch is a copy of a slice of that template with the stamp
// (publisher, sequence, send time) and packet id patched in, written with one socket.write.
import type { Session } from './session';
import { FrameSink } from './framer';
import { encodePublishTemplate, MqttVersion, PacketType, STAMP_PUB, STAMP_SEQ, STAMP_TIME, writeAck } from './protocol';

export class Publisher implements FrameSink {
  sent = 0;
  completed = 0;
  blocked = false;
  private readonly template: Buffer;
  private readonly packetLength: number;
  private readonly cycle: number;
  private readonly packetIdOffset: number;
  private readonly stampOffset: number;
  private next = 0;
  private packetId = 0;
  private relBuf: Buffer = Buffer.allocUnsafe(4096);
  private relLen = 0;

  constructor(readonly index: number, readonly session: Session, topics: readonly string[], readonly qos: number,
    payload: number, version: MqttVersion) {
    const templates = topics.map((t) => encodePublishTemplate(t, qos, payload, version));
    this.packetLength = templates[0].bytes.length;
    if (templates.some((t) => t.bytes.length !== this.packetLength)) throw new Error('publisher topics must have equal byte length');
    this.template = Buffer.concat(templates.map((t) => t.bytes));
    this.cycle = templates.length;
    this.packetIdOffset = templates[0].packetIdOffset;
    this.stampOffset = templates[0].payloadOffset;
    session.socket.on('drain', () => { this.blocked = false; });
  }

  get inflightLimit(): number {
    return Math.min(this.session.receiveMaximum, 65000);
  }

  /** Writes `n` messages stamped with `nowMicros`; returns false if the socket is now full. */
  sendBatch(n: number, nowMicros: number): boolean {
    const L = this.packetLength;
    const out = Buffer.allocUnsafe(n * L);
    let filled = 0;
    while (filled < n) {
      const run = Math.min(n - filled, this.cycle - this.next);
      this.template.copy(out, filled * L, this.next * L, (this.next + run) * L);
      filled += run;
      this.next = (this.next + run) % this.cycle;
    }
    for (let i = 0, base = 0; i < n; i++, base += L) {
      const s = base + this.stampOffset;
      out.writeUInt32LE(this.index, s + STAMP_PUB);
      out.writeUInt32LE(this.sent + i, s + STAMP_SEQ);
      out.writeDoubleLE(nowMicros, s + STAMP_TIME);
      if (this.packetIdOffset >= 0) {
        this.packetId = this.packetId === 65535 ? 1 : this.packetId + 1;
        out.writeUInt16BE(this.packetId, base + this.packetIdOffset);
      }
    }
    this.sent += n;
    const ok = this.session.socket.write(out);
    if (!ok) this.blocked = true;
    return ok;
  }

  onFrame(buf: Buffer, firstByte: number, start: number): void {
    const type = firstByte >> 4;
    if (type === PacketType.PUBACK || type === PacketType.PUBCOMP) this.completed++;
    else if (type === PacketType.PUBREC) {
      if (this.relLen + 4 > this.relBuf.length) this.flushReleases();
      this.relLen = writeAck(this.relBuf, this.relLen, PacketType.PUBREL, buf.readUInt16BE(start));
    }
  }

  /** QoS 2: PUBRELs for one read chunk go out in one write. */
  flushReleases(): void {
    if (this.relLen === 0) return;
    this.session.socket.write(Buffer.from(this.relBuf.subarray(0, this.relLen)));
    this.relLen = 0;
  }
}
