// Control packets (everything but PUBLISH) go through mqtt-packet, one whole frame at a time.
// Frames arrive complete, so a parser holds no state between calls and idle connections carry
// no parser (workers/README.md, "The path of a PUBLISH"). Only mqtt-packet's public API is used:
// - After a complete packet its parser is back at its start state by itself (it consumed the
//   frame and began a new packet), so the normal path resets nothing and allocates nothing.
// - After an error, an incomplete frame or bytes past the packet, the parser is replaced: its
//   internal state is not fully reset after an error (src/README.md, "Measured"; a following good CONNECT
//   failed to parse), and `_resetState` is private. Errors come only from misbehaving clients.
// - The protocol version is fixed per parser (one per version), and CONNECTs get a parser of
//   their own: parsing a CONNECT makes a parser adopt that CONNECT's version as its setting.
import * as mqttPacket from 'mqtt-packet';

type Packet = mqttPacket.Packet;

let result: Packet | null = null;
let failure: Error | null = null;
/** Packets the current frame produced: exactly one is a success. */
let count = 0;

function makeParser(protocolVersion: number): mqttPacket.Parser {
  const p = mqttPacket.parser({ protocolVersion });
  p.on('packet', (pk: Packet) => { result = pk; count++; });
  p.on('error', (e: Error) => { failure = e; });
  return p;
}

const CONNECT_SLOT = 0;
/** [CONNECT, -, -, v3, v4, v5], created on first use. */
const parsers: (mqttPacket.Parser | undefined)[] = [];

let created = 0;
/** Parsers created so far: tests check that the normal path creates none. */
export function parsersCreated(): number { return created; }

/** Parses one complete frame; returns the packet or an Error (never throws). */
export function parseFrame(frame: Buffer, protocolVersion: number): Packet | Error {
  const slot = frame.length > 0 && frame[0] >> 4 === 1 ? CONNECT_SLOT : protocolVersion;
  let parser = parsers[slot];
  if (!parser) {
    parser = parsers[slot] = makeParser(slot === CONNECT_SLOT ? 4 : protocolVersion);
    created++;
  }
  result = null;
  failure = null;
  count = 0;
  let left = 0;
  try {
    left = parser.parse(frame);
  } catch (err) {
    failure = err as Error;
  }
  if (failure || !result || left !== 0 || count !== 1) {
    parsers[slot] = undefined; // a fresh one next time
    return failure ?? new Error(result ? 'bytes left over after the packet' : 'incomplete packet');
  }
  return result;
}

export function encode(packet: Packet, protocolVersion: number): Buffer {
  return mqttPacket.generate(packet, { protocolVersion } as Parameters<typeof mqttPacket.generate>[1]);
}
