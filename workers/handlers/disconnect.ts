// DISCONNECT from the client (§3.14): 0x00 discards the will, 0x04 keeps it; a v5 client may
// change its Session Expiry Interval, but not from 0 [MQTT-3.14.2-2].
import type { IDisconnectPacket } from 'mqtt-packet';
import type { Connection } from '../net/connection';
import { RC } from '../protocol/constants';
import { DR } from '../../src/shared/disconnect-reasons';
import { hasRepeatedProperty } from '../protocol/validate';

export function handleDisconnect(c: Connection, p: IDisconnectPacket): void {
  if (hasRepeatedProperty(p.properties)) { c.protocolClose(RC.PROTOCOL_ERROR); return; }
  const s = c.session!;
  const newExpiry = p.properties?.sessionExpiryInterval;
  if (c.v5 && newExpiry !== undefined) {
    if (s.expiryInterval === 0 && newExpiry !== 0) { c.protocolClose(RC.PROTOCOL_ERROR); return; }
    s.expiryInterval = newExpiry;
  }
  const reason = p.reasonCode ?? 0;
  c.normalDisconnect = reason !== RC.DISCONNECT_WITH_WILL;
  c.endReason(DR.client_disconnect);
  c.close();
}
