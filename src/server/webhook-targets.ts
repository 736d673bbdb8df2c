/**
 * Where webhooks may be sent. A ledger server usually sits inside a network that its users'
 * URLs must not reach (a metadata service at 169.254.169.254, an admin port on 127.0.0.1):
 * targets in loopback, private, link-local and other non-public ranges are refused unless
 * the server was started with `--allow-private-webhooks`. The check runs twice: when a
 * webhook is created (a clear 400) and on every connection (the name is resolved again, and
 * the address actually dialled is the one checked, so DNS that changes its answer cannot
 * slip past the first check).
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP } from 'node:net';

const blocked = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], // "this" network
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // carrier-grade NAT
  ['127.0.0.0', 8],
  ['169.254.0.0', 16], // link-local, cloud metadata
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15], // benchmarking
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, broadcast
] as const)
  blocked.addSubnet(net, prefix, 'ipv4');
for (const [net, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['ff00::', 8], // multicast
  ['64:ff9b::', 96], // NAT64 of any IPv4, private included
] as const)
  blocked.addSubnet(net, prefix, 'ipv6');

/** True for an address no webhook may reach without the flag (IPv4-mapped IPv6 is judged as its IPv4). */
export function isPrivateAddress(address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return blocked.check(mapped[1], 'ipv4');
  const family = isIP(address);
  if (family === 0) return true;
  return blocked.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

export class PrivateTargetError extends Error {
  constructor(
    readonly host: string,
    readonly address: string,
  ) {
    super(
      `${host === address ? address : `${host} (${address})`} is a private, loopback or link-local address; webhooks go to public addresses only, unless the server runs with --allow-private-webhooks`,
    );
  }
}

/** The addresses `host` resolves to that no webhook may reach ([] when all are public). */
export async function privateAddressesOf(host: string): Promise<string[]> {
  const bare = host.replace(/^\[|\]$/g, '');
  if (isIP(bare)) return isPrivateAddress(bare) ? [bare] : [];
  const addresses = await new Promise<LookupAddress[]>((resolve, reject) =>
    dnsLookup(bare, { all: true }, (err, all) => (err ? reject(err) : resolve(all))),
  );
  return addresses.map((a) => a.address).filter(isPrivateAddress);
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * A `lookup` for net.connect that resolves as usual and fails the connection when an
 * address it would dial is private. (IP literals never reach a lookup: check them first.)
 */
export function publicOnlyLookup(hostname: string, options: object, callback: LookupCallback): void {
  dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return callback(err, []);
    const bad = addresses.find((a) => isPrivateAddress(a.address));
    if (bad) return callback(Object.assign(new PrivateTargetError(hostname, bad.address), { code: 'EPRIVATE' }), []);
    if ((options as { all?: boolean }).all) return callback(null, addresses);
    callback(null, addresses[0].address, addresses[0].family);
  });
}
