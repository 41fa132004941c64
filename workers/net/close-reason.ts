// Why a connection ended, from the MQTT reason code it was closed with (a v3 client gets no
// DISCONNECT, but the broker's reason is the same): the disconnect counters and log records
// (src/shared/disconnect-reasons.ts).
import { DR } from '../../src/shared/disconnect-reasons';

/** The disconnect reason for a server-side close with v5 reason `code`. */
export function reasonOfCode(code: number): number {
  switch (code) {
    case 0x8d: return DR.keepalive_timeout;
    case 0x8e: return DR.takeover;
    case 0x8b: return DR.shutdown;
    case 0x9c: return DR.fenced;
    case 0x98: return DR.kicked;
    case 0x83: return DR.internal_error;
    case 0x81: case 0x82: case 0x90: case 0x93: case 0x94: case 0x95: return DR.protocol_error;
    default: return DR.server_other;
  }
}
