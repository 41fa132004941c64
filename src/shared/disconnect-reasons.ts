// Why a connected client's connection ended: the `reason` label of
// fleetmq_disconnects_total, the `reason` field of the "client disconnected" log record and
// $SYS/broker/clients/disconnected/<reason>. The index is the counter's offset from
// C_DISCONNECT_BASE (src/shared/counters.ts); append only.
export const DISCONNECT_REASONS = [
  'client_disconnect', // the client sent DISCONNECT
  'keepalive_timeout', // nothing from the client for 1.5 x its keep-alive [MQTT-3.1.2-24]
  'protocol_error', // a malformed or forbidden packet (DISCONNECT 0x81 / 0x82 / ... on v5)
  'takeover', // another connection claimed the client id [MQTT-3.1.4-3]
  'shutdown', // the broker is stopping (v5: 0x8B)
  'connection_lost', // the socket closed or failed without a DISCONNECT
  'internal_error', // a handler threw (a bug): the connection was closed, the worker lived on
  'kicked', // an operator's action (v5: 0x98, administrative action)
  'server_other', // another server-side reason (quota exceeded, a store failure, ...)
  'output_limit', // the client left more output unread than any delivery can explain
  'fenced', // this node fenced itself out of its cluster (v5: 0x9C, use another server)
] as const;

export type DisconnectReason = (typeof DISCONNECT_REASONS)[number];

export const DR = Object.fromEntries(DISCONNECT_REASONS.map((r, i) => [r, i])) as { readonly [K in DisconnectReason]: number };
