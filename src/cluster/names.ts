// The cluster settings' syntax, checked without loading etcd3: config.ts uses it to refuse a
// bad --etcd, --node-id or --cluster-name at startup (exit 2) in a process that may never load
// an etcd client, and etcd-client.ts / membership.ts use the same rules.

export class EtcdConfigError extends Error {}

/** Node ids and cluster names: one etcd key segment, readable in logs and $SYS. */
export const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** Null when `value` is a valid node id / cluster name, else why not. */
export function nameProblem(what: string, value: string): string | null {
  return NAME_RE.test(value) ? null : `invalid ${what} "${value}": use letters, digits, '.', '_' or '-' (max 128, starting with a letter or digit)`;
}

/** Parses and checks endpoints; throws EtcdConfigError naming the bad one. */
export function parseEndpoints(endpoints: string[] | string): string[] {
  const list = (Array.isArray(endpoints) ? endpoints : endpoints.split(','))
    .map((s) => s.trim()).filter((s) => s.length > 0);
  if (list.length === 0) throw new EtcdConfigError('no etcd endpoint given (expected http://host:port[,http://host:port...])');
  for (const ep of list) {
    let u: URL;
    try { u = new URL(ep); } catch { throw new EtcdConfigError(`invalid etcd endpoint "${ep}": expected http://host:port`); }
    if (u.protocol !== 'http:') throw new EtcdConfigError(`invalid etcd endpoint "${ep}": only http:// is supported (no TLS yet)`);
    if (!u.hostname || !u.port) throw new EtcdConfigError(`invalid etcd endpoint "${ep}": expected http://host:port with an explicit port`);
    if (u.pathname !== '/' || u.search || u.hash || u.username) throw new EtcdConfigError(`invalid etcd endpoint "${ep}": expected http://host:port and nothing else`);
  }
  return list;
}
