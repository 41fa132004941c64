// The server side of the WebSocket opening handshake (RFC 6455 §4.2) for MQTT: which requests
// are upgraded and the 101 response that does it. Node's http.Server has parsed the request
// (its 'upgrade' event: GET with Connection: Upgrade and an Upgrade header); what is left is a
// few header checks and one SHA-1.
import * as crypto from 'node:crypto';
import type * as http from 'node:http';

/** The WebSocket subprotocols MQTT clients offer: 'mqtt' [MQTT-6.0.0-3], and 'mqttv3.1' for MQTT 3.1 clients. */
export const SUBPROTOCOLS = ['mqtt', 'mqttv3.1'];

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** Either the whole 101 response to write, or the status line of a refusal (and its extra headers). */
export type Upgrade = { accept: string } | { refuse: string; headers?: string };

/** Decides an upgrade request for the listener at `path`. */
export function upgrade(req: http.IncomingMessage, path: string): Upgrade {
  if (pathOf(req.url) !== path) return { refuse: '404 Not Found' };
  if (req.method !== 'GET' || String(req.headers.upgrade ?? '').toLowerCase() !== 'websocket') return { refuse: '400 Bad Request' };
  // Only version 13 exists; any other is answered with the versions we speak (§4.4).
  if (req.headers['sec-websocket-version'] !== '13') return { refuse: '426 Upgrade Required', headers: 'Sec-WebSocket-Version: 13\r\n' };
  // The key is 16 random bytes in base64 (§4.1).
  const key = req.headers['sec-websocket-key'];
  if (typeof key !== 'string' || !/^[+/0-9A-Za-z]{22}==$/.test(key.trim())) return { refuse: '400 Bad Request' };
  // A client that offers no MQTT subprotocol is refused [MQTT-6.0.0-3]; ours are preferred in
  // their order, whatever the client's.
  const offered = String(req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
  const protocol = SUBPROTOCOLS.find((p) => offered.includes(p));
  if (protocol === undefined) return { refuse: '400 Bad Request' };
  // No extension is accepted (no Sec-WebSocket-Extensions in the answer): permessage-deflate
  // would cost more CPU than MQTT's small packets save.
  const accept = crypto.createHash('sha1').update(key.trim() + GUID).digest('base64');
  return {
    accept: 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
      + `Sec-WebSocket-Accept: ${accept}\r\nSec-WebSocket-Protocol: ${protocol}\r\n\r\n`,
  };
}

export function pathOf(url: string | undefined): string {
  const u = url ?? '';
  const q = u.indexOf('?');
  return q < 0 ? u : u.slice(0, q);
}
