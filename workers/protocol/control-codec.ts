// Control packets (everything but PUBLISH) go through mqtt-packet, one whole frame at a time.
// One parser per worker: frames arrive complete, so the parser holds no state between calls
// and idle connections carry no parser (DESIGN.md §2.1). After an error its internal state is
// not fully reset by `_resetState` (a following good CONNECT failed to parse), so a failed
// parser is replaced; errors come only from misbehaving clients.
import * as mqttPacket from 'mqtt-packet';

type Packet = mqttPacket.Packet;
type RawParser = mqttPacket.Parser & { _resetState(): void; settings: { protocolVersion: number } };

let result: Packet | null = null;
let failure: Error | null = null;

function makeParser(): RawParser {
  const p = mqttPacket.parser({ protocolVersion: 4 }) as RawParser;
  p.on('packet', (pk: Packet) => { result = pk; });
  p.on('error', (e: Error) => { failure = e; });
  return p;
}

let parser = makeParser();

/** Parses one complete frame; returns the packet or an Error (never throws). */
export function parseFrame(frame: Buffer, protocolVersion: number): Packet | Error {
  result = null;
  failure = null;
  parser._resetState();
  parser.settings = { protocolVersion };
  try {
    parser.parse(frame);
  } catch (err) {
    failure = err as Error;
  }
  if (failure) { parser = makeParser(); return failure; }
  if (!result) { parser = makeParser(); return new Error('incomplete packet'); }
  return result;
}

export function encode(packet: Packet, protocolVersion: number): Buffer {
  return mqttPacket.generate(packet, { protocolVersion } as Parameters<typeof mqttPacket.generate>[1]);
}
