import { normalizeHostname } from './hosts.js';

/** A gRPC channel target as the SDK needs it: who it names, for the allow-list and the registry. */
export interface GrpcTarget {
  /** The authority calls carry (`orders:50051`), as grpc-js derives it; undefined when none applies (unix sockets). */
  readonly authority: string | undefined;
  /** Lower-case hostname, no brackets or port; `localhost` for local sockets; undefined when unknown. */
  readonly hostname: string | undefined;
}

const LOCAL: GrpcTarget = Object.freeze({ authority: undefined, hostname: 'localhost' });
const UNKNOWN: GrpcTarget = Object.freeze({ authority: undefined, hostname: undefined });

/** The hostname of `host[:port]` or `[v6]:port`. */
export function hostOfAuthority(authority: string): string | undefined {
  let host = authority.trim();
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    if (end === -1) return undefined;
    host = host.slice(1, end);
  } else {
    const colon = host.indexOf(':');
    // More than one colon without brackets: a bare IPv6 address, no port.
    if (colon !== -1 && host.indexOf(':', colon + 1) === -1) host = host.slice(0, colon);
  }
  return host.length === 0 ? undefined : normalizeHostname(host);
}

/**
 * Reads a target string the way grpc-js does (gRPC's name syntax): `dns:[//resolver/]host[:port]`,
 * `ipv4:`/`ipv6:` address lists (the first address), `unix:`/`unix-abstract:` sockets (local), and
 * anything without a scheme grpc-js resolves (`orders:50051`, `localhost:5000`) as a DNS name.
 * Schemes that pick their own backends (`xds:`) name no host the SDK could judge.
 */
export function parseGrpcTarget(target: string): GrpcTarget {
  const match = /^([A-Za-z][A-Za-z0-9+.-]*):(.*)$/s.exec(target);
  let rest = target;
  if (match !== null) {
    const scheme = match[1]!.toLowerCase();
    if (scheme === 'dns') {
      rest = match[2]!;
      if (rest.startsWith('//')) {
        const slash = rest.indexOf('/', 2);
        rest = slash === -1 ? '' : rest.slice(slash + 1);
      }
    } else if (scheme === 'ipv4' || scheme === 'ipv6') {
      rest = match[2]!.split(',')[0]!;
    } else if (scheme === 'unix' || scheme === 'unix-abstract' || scheme === 'vsock') {
      return LOCAL;
    } else if (scheme === 'xds') {
      return UNKNOWN;
    }
    // Any other "scheme" is the host of `host:port`: grpc-js falls back to DNS for it.
  }
  const hostname = hostOfAuthority(rest);
  return hostname === undefined ? UNKNOWN : { authority: rest.trim(), hostname };
}
