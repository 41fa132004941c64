// WebSocket framing (RFC 6455 §5) for the server side of MQTT over WebSocket: a decoder that
// turns a read's client frames into the MQTT bytes they carry, and the header of a frame we send.
//
// Why our own and not `ws`'s Receiver/Sender: MQTT over WebSocket is a byte stream in binary
// frames [MQTT-6.0.0-2], so a message never needs to be assembled. `ws` buffers each message
// whole, emits one event per message and calls back per sent frame; at the small frames MQTT
// clients send (mqtt.js writes one packet as several frames) that cost about 5× a TCP message
// (bench/README.md, "Transports"). Here a read is decoded in place: each payload is unmasked
// into the read's own buffer, moved down over the headers before it, and the data of all the
// read's frames is handed on as one subarray: no copy beyond the unmasking, no allocation.
import { isUtf8 } from 'node:buffer';

/** Close codes (RFC 6455 §7.4.1). */
export const WS_NORMAL = 1000;
export const WS_PROTOCOL_ERROR = 1002;
export const WS_UNSUPPORTED_DATA = 1003;
/** In a close frame we receive: no code was given. Never sent. */
export const WS_NO_STATUS = 1005;
export const WS_INVALID_PAYLOAD = 1007;
export const WS_TOO_BIG = 1009;

export const OP_CONTINUATION = 0x0;
export const OP_TEXT = 0x1;
export const OP_BINARY = 0x2;
export const OP_CLOSE = 0x8;
export const OP_PING = 0x9;
export const OP_PONG = 0xa;

const enum St { HEADER, DATA, CONTROL, DONE }

/** What ended the decoding: a close frame from the peer, or a frame we refuse. */
export interface WsEnd {
  /** The peer sent a close frame (we echo it); false: we fail the connection with `code`. */
  byPeer: boolean;
  /** The peer's code (WS_NO_STATUS when it gave none), or ours. */
  code: number;
  /** For logs: what was wrong. */
  why: string;
}

/**
 * Decodes a client's frames, one read at a time. Control frames may come between the frames of
 * a message (§5.4); a ping is answered through `onPing` at once; a close frame or a frame that
 * breaks the protocol ends decoding (`end`): what the same read carried before it is still
 * returned, so a DISCONNECT followed by a close frame in one read is not lost.
 */
export class WsDecoder {
  /** Set once decoding ended; nothing more is decoded. */
  end: WsEnd | null = null;

  private st = St.HEADER;
  /** A header cut by the end of a read: its bytes so far. */
  private readonly hdr = Buffer.alloc(14);
  private hdrHave = 0;
  /** Payload bytes of the current frame still to come. */
  private remaining = 0;
  private m0 = 0; private m1 = 0; private m2 = 0; private m3 = 0;
  /** Where in the mask the next payload byte is (payloads cut by reads). */
  private phase = 0;
  /** A binary message is open: the next data frame must be a continuation. */
  private inMessage = false;
  private messageBytes = 0;
  /** The control frame being read (≤ 125 bytes, §5.5) and its opcode. */
  private readonly ctrl = Buffer.alloc(125);
  private ctrlHave = 0;
  private ctrlOp = 0;

  /**
   * `maxMessage`: the largest frame or message accepted (larger: 1009).
   * `onPing`: a ping's payload (a copy), to be answered with a pong carrying it.
   */
  constructor(private readonly maxMessage: number, private readonly onPing: (payload: Buffer) => void) {}

  /**
   * Decodes one read. `chunk` is ours to change: payloads are unmasked in place. Returns the
   * data it carried as one subarray of `chunk`, or null when it carried none.
   */
  decode(chunk: Buffer): Buffer | null {
    const n = chunk.length;
    let r = 0;
    /** Where the data goes (-1: none yet): at or before `r`, so moving it down is safe. */
    let start = -1;
    let w = -1;
    while (r < n && this.st !== St.DONE) {
      if (this.st === St.HEADER) {
        if (this.hdrHave === 0 && n - r >= 2) {
          const need = headerSize(chunk[r + 1]);
          if (n - r >= need) { this.header(chunk, r); r += need; continue; }
        }
        r = this.gatherHeader(chunk, r);
      } else if (this.st === St.DATA) {
        const take = Math.min(this.remaining, n - r);
        if (start < 0) { start = r; w = r; }
        this.unmask(chunk, r, w, take);
        r += take;
        w += take;
        this.remaining -= take;
        if (this.remaining === 0) this.st = St.HEADER;
      } else {
        const take = Math.min(this.remaining, n - r);
        chunk.copy(this.ctrl, this.ctrlHave, r, r + take);
        this.unmask(this.ctrl, this.ctrlHave, this.ctrlHave, take);
        this.ctrlHave += take;
        r += take;
        this.remaining -= take;
        if (this.remaining === 0) this.control();
      }
    }
    return start >= 0 && w > start ? chunk.subarray(start, w) : null;
  }

  /** Copies header bytes into `hdr` until it is whole (then decodes it); returns the new read position. */
  private gatherHeader(chunk: Buffer, r: number): number {
    const n = chunk.length;
    if (this.hdrHave < 2) {
      const take = Math.min(2 - this.hdrHave, n - r);
      chunk.copy(this.hdr, this.hdrHave, r, r + take);
      this.hdrHave += take;
      r += take;
      if (this.hdrHave < 2) return r;
    }
    const need = headerSize(this.hdr[1]);
    const take = Math.min(need - this.hdrHave, n - r);
    chunk.copy(this.hdr, this.hdrHave, r, r + take);
    this.hdrHave += take;
    r += take;
    if (this.hdrHave === need) { this.hdrHave = 0; this.header(this.hdr, 0); }
    return r;
  }

  /** Decodes a whole frame header at `b[o]` and sets up for its payload. */
  private header(b: Buffer, o: number): void {
    const b0 = b[o];
    const b1 = b[o + 1];
    const fin = (b0 & 0x80) !== 0;
    const op = b0 & 0x0f;
    // No extension is ever negotiated (the upgrade accepts none), so no reserved bit may be set.
    if ((b0 & 0x70) !== 0) return this.fail(WS_PROTOCOL_ERROR, 'reserved bits set');
    // A client MUST mask every frame; a server MUST close the connection when one is not (§5.1).
    if ((b1 & 0x80) === 0) return this.fail(WS_PROTOCOL_ERROR, 'unmasked client frame');
    const len7 = b1 & 0x7f;
    let p = o + 2;
    let len = len7;
    if (len7 === 126) { len = b.readUInt16BE(p); p += 2; } else if (len7 === 127) {
      const hi = b.readUInt32BE(p);
      // The most significant bit MUST be 0 (§5.2).
      if (hi >= 0x80000000) return this.fail(WS_PROTOCOL_ERROR, '64-bit length with its top bit set');
      len = hi * 0x100000000 + b.readUInt32BE(p + 4);
      p += 8;
    }
    this.m0 = b[p]; this.m1 = b[p + 1]; this.m2 = b[p + 2]; this.m3 = b[p + 3];
    this.phase = 0;
    this.remaining = len;
    if (op >= 0x8) {
      // Control frames: not fragmented, at most 125 bytes (§5.5), of a known opcode.
      if (op !== OP_CLOSE && op !== OP_PING && op !== OP_PONG) return this.fail(WS_PROTOCOL_ERROR, `reserved opcode ${op}`);
      if (!fin) return this.fail(WS_PROTOCOL_ERROR, 'fragmented control frame');
      if (len > 125) return this.fail(WS_PROTOCOL_ERROR, 'control frame over 125 bytes');
      this.ctrlOp = op;
      this.ctrlHave = 0;
      this.st = St.CONTROL;
      if (len === 0) this.control();
      return;
    }
    if (op === OP_TEXT) return this.fail(WS_UNSUPPORTED_DATA, 'text frame: MQTT needs binary frames'); // [MQTT-6.0.0-1]
    if (op === OP_CONTINUATION) {
      if (!this.inMessage) return this.fail(WS_PROTOCOL_ERROR, 'continuation frame outside a message');
    } else if (op === OP_BINARY) {
      if (this.inMessage) return this.fail(WS_PROTOCOL_ERROR, 'new message inside a fragmented one');
      this.messageBytes = 0;
    } else return this.fail(WS_PROTOCOL_ERROR, `reserved opcode ${op}`);
    // Decided on the header: a peer announcing a huge frame is refused before it sends it.
    this.messageBytes += len;
    if (this.messageBytes > this.maxMessage) return this.fail(WS_TOO_BIG, `message over ${this.maxMessage} bytes`);
    this.inMessage = !fin;
    this.st = len === 0 ? St.HEADER : St.DATA;
  }

  /** A whole control frame is in `ctrl`. */
  private control(): void {
    this.st = St.HEADER;
    const payload = this.ctrl.subarray(0, this.ctrlHave);
    if (this.ctrlOp === OP_PING) { this.onPing(Buffer.from(payload)); return; }
    if (this.ctrlOp === OP_PONG) return; // we send no pings: an unsolicited pong is allowed (§5.5.3)
    // Close (§5.5.1): empty, or a 2-byte code and a UTF-8 reason.
    if (payload.length === 0) { this.finish(true, WS_NO_STATUS, 'close frame'); return; }
    if (payload.length === 1) return this.fail(WS_PROTOCOL_ERROR, 'close frame of 1 byte');
    const code = payload.readUInt16BE(0);
    if (!validCloseCode(code)) return this.fail(WS_PROTOCOL_ERROR, `close code ${code}`);
    if (!isUtf8(payload.subarray(2))) return this.fail(WS_INVALID_PAYLOAD, 'close reason not UTF-8');
    this.finish(true, code, 'close frame');
  }

  private fail(code: number, why: string): void { this.finish(false, code, why); }

  private finish(byPeer: boolean, code: number, why: string): void {
    this.st = St.DONE;
    this.end = { byPeer, code, why };
  }

  /** XORs `len` bytes at `src` with the mask into `dst` (≤ src: moving down is safe). */
  private unmask(b: Buffer, src: number, dst: number, len: number): void {
    const m0 = this.m0, m1 = this.m1, m2 = this.m2, m3 = this.m3;
    let i = 0;
    // Bring the mask to phase 0, then four bytes a turn.
    let ph = this.phase;
    while (ph !== 0 && i < len) {
      b[dst + i] = b[src + i] ^ (ph === 1 ? m1 : ph === 2 ? m2 : m3);
      ph = (ph + 1) & 3;
      i++;
    }
    const end4 = i + ((len - i) & ~3);
    for (; i < end4; i += 4) {
      b[dst + i] = b[src + i] ^ m0;
      b[dst + i + 1] = b[src + i + 1] ^ m1;
      b[dst + i + 2] = b[src + i + 2] ^ m2;
      b[dst + i + 3] = b[src + i + 3] ^ m3;
    }
    for (; i < len; i++) {
      b[dst + i] = b[src + i] ^ (ph === 0 ? m0 : ph === 1 ? m1 : m2);
      ph++;
    }
    this.phase = ph & 3;
  }
}

/** A frame header's size from its second byte: 2, plus 2 or 8 for the length, plus 4 for the mask. */
function headerSize(b1: number): number {
  const len7 = b1 & 0x7f;
  return 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + ((b1 & 0x80) !== 0 ? 4 : 0);
}

/** Codes a peer may send (§7.4.1, §7.4.2): 1004-1006 and 1015 are reserved, 3000-4999 are for applications. */
function validCloseCode(c: number): boolean {
  return (c >= 1000 && c <= 1014 && c !== 1004 && c !== 1005 && c !== 1006) || (c >= 3000 && c <= 4999);
}

/** A server frame's header (FIN set, unmasked, §5.2) for a payload of `len` bytes: 2, 4 or 10 bytes. */
export function headerLength(len: number): number {
  return len < 126 ? 2 : len < 0x10000 ? 4 : 10;
}

/** Writes that header at `b[0]`; returns its length. */
export function writeHeader(b: Buffer, op: number, len: number): number {
  b[0] = 0x80 | op;
  if (len < 126) { b[1] = len; return 2; }
  if (len < 0x10000) { b[1] = 126; b.writeUInt16BE(len, 2); return 4; }
  b[1] = 127;
  b.writeUInt32BE(Math.floor(len / 0x100000000), 2);
  b.writeUInt32BE(len >>> 0, 6);
  return 10;
}

/** A whole server frame, header and payload in one buffer. */
export function encodeFrame(op: number, payload: Buffer): Buffer {
  const h = headerLength(payload.length);
  const f = Buffer.allocUnsafe(h + payload.length);
  writeHeader(f, op, payload.length);
  payload.copy(f, h);
  return f;
}
