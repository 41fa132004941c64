// A subscribing connection. It reads only each PUBLISH's QoS, packet id and the 16-byte stamp
// at the start of the payload: enough for delivery counts, loss, order and latency.
import type { Session } from './session';
import { FrameSink } from './framer';
import { bucketOf } from './histogram';
import { MqttVersion, PacketType, STAMP_PUB, STAMP_SEQ, STAMP_TIME, STAMP_BYTES, writeAck } from './protocol';

export interface ReceiveTally {
  received: number;
  outOfOrder: number;
  /** Deliveries per publisher since the last flush to shared memory. */
  perPublisher: Int32Array;
  touched: number[];
  histogram: Float64Array;
  recording: boolean;
  nowMicros: number;
}

export class Subscriber implements FrameSink {
  private readonly lastSeq: Float64Array;
  private ackBuf: Buffer = Buffer.allocUnsafe(8192);
  private ackLen = 0;

  constructor(readonly session: Session, private readonly version: MqttVersion, publishers: number,
    private readonly tally: ReceiveTally) {
    this.lastSeq = new Float64Array(publishers).fill(-1);
  }

  onFrame(buf: Buffer, firstByte: number, start: number, end: number): void {
    const type = firstByte >> 4;
    if (type === PacketType.PUBREL) return this.queueAck(PacketType.PUBCOMP, buf.readUInt16BE(start));
    if (type !== PacketType.PUBLISH) return;
    const qos = (firstByte >> 1) & 3;
    let p = start + 2 + buf.readUInt16BE(start);
    if (qos > 0) {
      this.queueAck(qos === 1 ? PacketType.PUBACK : PacketType.PUBREC, buf.readUInt16BE(p));
      p += 2;
    }
    if (this.version === 5) p = skipProperties(buf, p);
    if (end - p < STAMP_BYTES) return;
    this.record(buf.readUInt32LE(p + STAMP_PUB), buf.readUInt32LE(p + STAMP_SEQ), buf.readDoubleLE(p + STAMP_TIME));
  }

  private record(pub: number, seq: number, sentMicros: number): void {
    const t = this.tally;
    if (pub >= this.lastSeq.length) return;
    t.received++;
    if (seq <= this.lastSeq[pub]) t.outOfOrder++;
    else this.lastSeq[pub] = seq;
    if (t.perPublisher[pub]++ === 0) t.touched.push(pub);
    if (t.recording) t.histogram[bucketOf(t.nowMicros - sentMicros)]++;
  }

  private queueAck(type: PacketType, packetId: number): void {
    if (this.ackLen + 4 > this.ackBuf.length) this.flushAcks();
    this.ackLen = writeAck(this.ackBuf, this.ackLen, type, packetId);
  }

  /** Acks for one read chunk go out in one write. */
  flushAcks(): void {
    if (this.ackLen === 0) return;
    this.session.socket.write(Buffer.from(this.ackBuf.subarray(0, this.ackLen)));
    this.ackLen = 0;
  }
}

function skipProperties(buf: Buffer, p: number): number {
  let len = 0;
  let mul = 1;
  for (let i = 0; i < 4; i++) {
    const b = buf[p++];
    len += (b & 0x7f) * mul;
    mul *= 128;
    if ((b & 0x80) === 0) break;
  }
  return p + len;
}
