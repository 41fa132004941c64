// Control packets (everything but PUBLISH) go through mqtt-packet, one whole frame at a time.
// One parser per worker: frames arrive complete, so the parser never holds state between
// calls and idle connections carry no parser (DESIGN.md §2.1).
import * as mqttPacket from 'mqtt-packet';

type Packet = mqttPacket.Packet;

const parser = mqttPacket.parser({ protocolVersion: 4 });
let result: Packet | null = null;
let failure: Error | null = null;
parser.on('packet', (p: Packet) => { result = p; });
parser.on('error', (e: Error) => { failure = e; });

/** Parses one complete frame; returns the packet or an Error (never throws). */
export function parseFrame(frame: Buffer, protocolVersion: number): Packet | Error {
  result = null;
  failure = null;
  const p = parser as unknown as { _resetState(): void; settings: { protocolVersion: number } };
  p._resetState();
  p.settings = { protocolVersion };
  try {
    parser.parse(frame);
  } catch (err) {
    failure = err as Error;
  }
  if (failure) return failure;
  if (!result) return new Error('incomplete packet');
  return result;
}

export function encode(packet: Packet, protocolVersion: number): Buffer {
  return mqttPacket.generate(packet, { protocolVersion } as Parameters<typeof mqttPacket.generate>[1]);
}
