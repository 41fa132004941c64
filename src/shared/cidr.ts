// Lists of IP addresses and CIDR blocks (the PROXY protocol's trusted senders), checked with
// Node's net.BlockList: one parse at start, then a lookup per accepted connection.
import * as net from 'node:net';

/** The first entry that is not an IPv4 / IPv6 address or CIDR block, as a line; null when all are. */
export function badCidr(entries: readonly string[]): string | null {
  for (const raw of entries) {
    const e = raw.trim();
    const [addr, bits, extra] = e.split('/');
    const family = net.isIP(addr);
    const max = family === 4 ? 32 : 128;
    if (family === 0 || extra !== undefined || (bits !== undefined && !(/^\d{1,3}$/.test(bits) && Number(bits) <= max))) {
      return `${JSON.stringify(e)} is not an IP address or CIDR block (e.g. 10.0.0.0/8, ::1)`;
    }
  }
  return null;
}

/** Addresses in `entries` (checked by badCidr first). */
export class AddressList {
  private readonly list = new net.BlockList();

  constructor(entries: readonly string[]) {
    for (const raw of entries) {
      const e = raw.trim();
      const [addr, bits] = e.split('/');
      const type = net.isIPv4(addr) ? 'ipv4' : 'ipv6';
      if (bits === undefined) this.list.addAddress(addr, type);
      else this.list.addSubnet(addr, Number(bits), type);
    }
  }

  /** An IPv4 peer on a dual-stack socket shows as ::ffff:a.b.c.d: checked as the IPv4 address it is. */
  has(address: string | undefined): boolean {
    if (!address) return false;
    const v4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
    if (v4) return this.list.check(v4[1], 'ipv4');
    const type = net.isIPv4(address) ? 'ipv4' : net.isIPv6(address) ? 'ipv6' : null;
    return type !== null && this.list.check(address, type);
  }
}
