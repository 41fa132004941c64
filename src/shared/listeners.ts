// The listeners of a broker, in one fixed order that the main thread and every worker derive
// from the same config: the index travels in each accept record (src/shared/wiring.ts), so a
// worker knows which transport an fd speaks without a message. Index 0 is always plain TCP
// (--port), whose path through the worker is unchanged by the others.
import type { BrokerConfig } from '../config';

export type TransportKind = 'tcp' | 'tls' | 'ws' | 'wss';

export interface ListenerSpec {
  transport: TransportKind;
  port: number;
  host: string;
  /** WebSocket listeners: the only HTTP path upgraded. */
  path: string;
  /** tls / wss listeners: where the certificates are and what is asked of clients. */
  tls: ListenerTls | null;
  /** PROXY protocol: the header is read first, from these senders only (IPs / CIDRs); null: off. */
  proxyTrusted: string[] | null;
  /** Connections open at once on this listener (0: only the global --max-connections). */
  maxConnections: number;
  /** Connections handed to workers per second (0: no limit). */
  maxConnectionRate: number;
}

export interface ListenerTls {
  cert: string;
  key: string;
  ca: string | null;
  requireCertificate: boolean;
  identityAsUsername: boolean;
  /** PEM CRL file checked against client certificates, or null. */
  crl: string | null;
}

/** The flags' listeners first (--port, --tls-port, --ws-port, --wss-port), then the `listeners` entries. */
export function listenerSpecs(config: BrokerConfig): ListenerSpec[] {
  const globalTls = (): ListenerTls => ({
    cert: config.cert ?? '', key: config.key ?? '', ca: config.ca ?? null,
    requireCertificate: config.requireCertificate === 'true', identityAsUsername: config.useIdentityAsUsername === 'true',
    crl: config.crl ?? null,
  });
  const globalTrusted = config.proxyTrusted ? config.proxyTrusted.split(',').map((x) => x.trim()).filter((x) => x) : [];
  const rate = config.maxConnectionRate ?? 0;
  const flags = { proxyTrusted: null, maxConnections: 0, maxConnectionRate: rate };
  const out: ListenerSpec[] = [{ transport: 'tcp', port: config.port, host: config.host, path: '', tls: null, ...flags, proxyTrusted: config.proxyProtocol === 'true' ? globalTrusted : null }];
  if (config.tlsPort !== undefined) out.push({ transport: 'tls', port: config.tlsPort, host: config.host, path: '', tls: globalTls(), ...flags });
  if (config.wsPort !== undefined) out.push({ transport: 'ws', port: config.wsPort, host: config.host, path: config.wsPath, tls: null, ...flags });
  if (config.wssPort !== undefined) out.push({ transport: 'wss', port: config.wssPort, host: config.host, path: config.wsPath, tls: globalTls(), ...flags });
  for (const l of config.listeners ?? []) {
    const secure = l.transport === 'tls' || l.transport === 'wss';
    const g = globalTls();
    const requireCertificate = l.requireCertificate ?? g.requireCertificate;
    out.push({
      transport: l.transport,
      port: l.port,
      host: l.host ?? config.host,
      path: l.transport === 'ws' || l.transport === 'wss' ? l.path ?? config.wsPath : '',
      tls: secure ? {
        cert: l.cert ?? g.cert, key: l.key ?? g.key, ca: l.ca ?? g.ca, requireCertificate,
        identityAsUsername: requireCertificate && (l.useIdentityAsUsername ?? g.identityAsUsername),
        crl: l.crl ?? g.crl,
      } : null,
      proxyTrusted: l.proxyProtocol ? l.proxyTrusted ?? globalTrusted : null,
      maxConnections: l.maxConnections ?? 0,
      maxConnectionRate: l.maxConnectionRate ?? rate,
    });
  }
  return out;
}

/** PEM text the main thread read (and checked) from --cert, --key and --ca; workers build their TLS contexts from it. */
export interface TlsMaterial {
  cert: string;
  key: string;
  ca: string | null;
  /** PEM CRL(s), or null. */
  crl: string | null;
  /**
   * Session ticket keys (48 bytes, base64), one set per process for its life: a client that
   * resumes its TLS session (RFC 5077) on another worker than the first needs no full handshake.
   */
  ticketKeys: string;
}

/** main → worker: new certificates for new connections (SIGHUP), by listener index (null: not TLS); the worker answers TlsReloaded. */
export interface TlsReload { t: 'tls-reload'; seq: number; material: (TlsMaterial | null)[] }
export interface TlsReloaded { t: 'tls-reloaded'; seq: number; error: string | null }

/** The limits SIGHUP reloads (src/main/limits-reload.ts); workers apply them to their config. */
export const RELOADED_LIMITS = ['maxConnections', 'maxConnectionRate', 'connectTimeoutMs', 'maxClientMsgRate', 'maxClientByteRate', 'maxSubscriptions', 'maxPayloadSize'] as const;
export type ReloadedLimits = Pick<BrokerConfig, typeof RELOADED_LIMITS[number]>;
/** main → worker: new limits (SIGHUP); connections made from now on get the new client rates. */
export interface LimitsReload { t: 'limits'; limits: ReloadedLimits }
