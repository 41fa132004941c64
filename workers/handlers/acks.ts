// PUBACK / PUBREC / PUBREL / PUBCOMP (§4.3): outbound QoS 1/2 completion and the inbound
// QoS 2 release.
import type { Connection } from '../net/connection';
import { encodeAck } from '../protocol/publish-codec';
import { PUBACK, PUBREC, PUBREL, PUBCOMP, RC } from '../protocol/constants';
import type { HandlerDeps } from './deps';

const PACKET_ID_NOT_FOUND = 0x92;

export function handleAck(d: HandlerDeps, c: Connection, type: number, first: number, buf: Buffer, start: number, end: number): void {
  // Fixed-header flags are reserved: 0010 for PUBREL, 0000 for the others [MQTT-2.2.2-2].
  if ((first & 0x0f) !== (type === PUBREL ? 2 : 0) || end - start < 2) { c.protocolClose(RC.MALFORMED_PACKET); return; }
  const pid = (buf[start] << 8) | buf[start + 1];
  const reason = c.v5 && end - start > 2 ? buf[start + 2] : 0;
  const s = c.session!;
  switch (type) {
    case PUBACK: s.complete(pid, 1, 'publish'); break;
    case PUBREC:
      // PUBREL only once the pubrel state is durable: after a crash the broker must resend
      // PUBREL, never the PUBLISH a client that already completed would take as new.
      if (s.received(pid, reason)) { if (reason < 0x80) d.store.barrier(() => c.write(encodeAck(PUBREL, pid, 0, c.v5))); }
      else c.write(encodeAck(PUBREL, pid, PACKET_ID_NOT_FOUND, c.v5));
      break;
    case PUBCOMP: s.complete(pid, 2, 'pubrel'); break;
    case PUBREL: {
      const known = s.inboundQos2.delete(pid);
      if (known && s.persistent) d.store.op({ o: 'delInbound', clientId: s.clientId, packetId: pid });
      c.write(encodeAck(PUBCOMP, pid, known ? 0 : PACKET_ID_NOT_FOUND, c.v5));
      break;
    }
  }
}
