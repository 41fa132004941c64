// The one place that enforces protocol state (STYLE.md 1): CONNECT first and only once,
// then each packet type to its handler. PUBLISH and its acks skip mqtt-packet.
import type { Packet, ISubscribePacket, IUnsubscribePacket, IDisconnectPacket } from 'mqtt-packet';
import { Connection, ConnState } from '../net/connection';
import * as T from '../protocol/constants';
import { RC } from '../protocol/constants';
import { parseFrame } from '../protocol/control-codec';
import { handleConnect } from './connect';
import { handlePublish } from './publish';
import { handleAck } from './acks';
import { handleSubscribe, handleUnsubscribe } from './subscribe';
import { handleDisconnect } from './disconnect';
import type { HandlerDeps } from './deps';

const PINGRESP = Buffer.from([T.PINGRESP << 4, 0]);

export function dispatch(d: HandlerDeps, c: Connection, first: number, buf: Buffer, frameStart: number, start: number, end: number): void {
  const type = first >> 4;
  if (c.state === ConnState.NEW) {
    if (type !== T.CONNECT) { c.close(); return; } // [MQTT-3.1.0-1]
    handleConnect(d, c, first, buf, frameStart, start, end);
    return;
  }
  if (type === T.PUBLISH) { handlePublish(d, c, first, buf, start, end); return; }
  // PUBLISHes batched so far are routed and acknowledged before anything else is answered, so
  // replies keep the order of the packets that caused them.
  d.router.flushBatch();
  switch (type) {
    case T.PUBACK: case T.PUBREC: case T.PUBREL: case T.PUBCOMP:
      handleAck(d, c, type, first, buf, start, end);
      return;
    case T.PINGREQ:
      if ((first & 0x0f) !== 0 || end !== start) { c.protocolClose(RC.MALFORMED_PACKET); return; }
      c.write(PINGRESP);
      return;
    case T.CONNECT: c.protocolClose(RC.PROTOCOL_ERROR); return; // a second CONNECT [MQTT-3.1.0-2]
    case T.SUBSCRIBE: case T.UNSUBSCRIBE: case T.DISCONNECT: case T.AUTH:
      control(d, c, type, buf, frameStart, start, end);
      return;
    default:
      // CONNACK, SUBACK, UNSUBACK, PINGRESP and type 0 only ever flow server → client.
      c.protocolClose(RC.PROTOCOL_ERROR);
  }
}

function control(d: HandlerDeps, c: Connection, type: number, buf: Buffer, frameStart: number, start: number, end: number): void {
  if (type === T.AUTH) {
    // No authentication method was accepted in CONNECT, so any AUTH is a protocol error (§4.12).
    c.protocolClose(RC.PROTOCOL_ERROR);
    return;
  }
  const p: Packet | Error = parseFrame(buf.subarray(frameStart, end), c.version);
  if (p instanceof Error) { c.protocolClose(RC.MALFORMED_PACKET); return; }
  switch (type) {
    case T.SUBSCRIBE: handleSubscribe(d, c, p as ISubscribePacket, buf, start, end); break;
    case T.UNSUBSCRIBE: handleUnsubscribe(d, c, p as IUnsubscribePacket, buf, start, end); break;
    case T.DISCONNECT: handleDisconnect(c, p as IDisconnectPacket); break;
  }
}
