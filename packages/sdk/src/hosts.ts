import { ConfigError, describeUntrusted } from '@devstack/core';

/**
 * Which hosts may receive the routing key. Exact names, `*.suffix` patterns, `*` for every host,
 * or a predicate given the lower-cased host name (no port, no brackets, no trailing dot).
 */
export type HostRules = readonly string[] | ((host: string) => boolean);

export interface HostPolicyOptions {
  /** Replaces the cluster-local default. Registry services and their targets stay allowed. */
  allowHosts?: HostRules;
  /** Never given the key, whatever else matches: checked first. */
  denyHosts?: HostRules;
  /**
   * The fleet's namespaces: `<service>.<namespace>` and `<service>.<namespace>.svc[.<cluster
   * domain>]` names in them are fleet hosts, allowed as registry services are.
   */
  namespaces?: readonly string[];
  /** The cluster domain of `.svc.<domain>` names. Default `cluster.local`. */
  clusterDomain?: string;
}

export type HostPredicate = (host: string) => boolean;

/** Lower-case, no port is assumed; drops IPv6 brackets and one trailing dot. */
export function normalizeHostname(host: string): string {
  let h = host.toLowerCase();
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1);
  if (h.endsWith('.')) h = h.slice(0, -1);
  return h;
}

/**
 * The default audience of the key: what can only be inside the cluster or this machine. Single-label
 * names only resolve through the cluster's search domains (or /etc/hosts), which is where services
 * live; anything with a public-looking domain is a third party until configured otherwise.
 */
export function isClusterLocal(host: string): boolean {
  if (host === 'localhost' || host === '127.0.0.1' || host === '::1') return true;
  if (host.indexOf('.') === -1 && host.indexOf(':') === -1) return host.length > 0;
  return host.endsWith('.svc') || host.endsWith('.cluster.local') || host.endsWith('.localhost');
}

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * Whether `host` is a Service name in one of `namespaces` (`orders.shop`, `orders.shop.svc`,
 * `orders.shop.svc.cluster.local`): the sidecar routes those names, so the key must go with them
 * even where no registry lists them (propagation only).
 */
export function fleetHost(namespaces: readonly string[], clusterDomain = 'cluster.local'): HostPredicate {
  if (namespaces.length === 0) return () => false;
  const names = new Set(namespaces.map(normalizeHostname));
  const domain = normalizeHostname(clusterDomain);
  return (host) => {
    const dot = host.indexOf('.');
    if (dot <= 0 || !LABEL.test(host.slice(0, dot))) return false;
    const rest = host.slice(dot + 1);
    const end = rest.indexOf('.');
    const namespace = end === -1 ? rest : rest.slice(0, end);
    if (!names.has(namespace)) return false;
    const tail = end === -1 ? '' : rest.slice(end + 1);
    return tail === '' || tail === 'svc' || tail === `svc.${domain}`;
  };
}

function compile(rules: HostRules, what: string): HostPredicate {
  if (typeof rules === 'function') return rules;
  const exact = new Set<string>();
  const suffixes: string[] = [];
  const problems: string[] = [];
  for (const raw of rules) {
    if (typeof raw !== 'string' || raw.length === 0) {
      problems.push(`${what}: ${describeUntrusted(raw)} is not a host name or *.suffix pattern`);
      continue;
    }
    if (raw === '*') return () => true;
    if (raw.startsWith('*.')) suffixes.push(normalizeHostname(raw.slice(1)));
    else exact.add(normalizeHostname(raw));
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return (host) => {
    if (exact.has(host)) return true;
    for (const suffix of suffixes) if (host.endsWith(suffix)) return true;
    return false;
  };
}

/**
 * The allow-list as one predicate. `registryHosts` is read on every call so a new snapshot's
 * services are allowed as soon as it is published, without rebuilding the policy; `routes` says
 * whether the registry routes a name (`orders.shop`, which no set of hosts lists).
 */
export function createHostPolicy(options: HostPolicyOptions, registryHosts: () => ReadonlySet<string>, routes: HostPredicate = () => false): HostPredicate {
  const deny = options.denyHosts === undefined ? undefined : compile(options.denyHosts, 'denyHosts');
  const allow = options.allowHosts === undefined ? isClusterLocal : compile(options.allowHosts, 'allowHosts');
  const fleet = fleetHost(options.namespaces ?? [], options.clusterDomain);
  return (raw) => {
    const host = normalizeHostname(raw);
    if (deny !== undefined && deny(host)) return false;
    return registryHosts().has(host) || allow(host) || routes(host) || fleet(host);
  };
}

const ABSOLUTE = /^[a-z][a-z0-9+.-]*:\/\//i;

/**
 * The host a request target names when it is in absolute form (`GET http://api.example.com/ ...`,
 * what a forward proxy is sent, RFC 9112 §3.2.2): the proxy passes the headers on to that host,
 * so it receives the key too. Undefined for an origin-form target (`/path`), null for an absolute
 * one that cannot be read (treated as a third party).
 */
export function absoluteTargetHost(path: unknown): string | null | undefined {
  if (typeof path !== 'string' || !ABSOLUTE.test(path)) return undefined;
  try {
    const hostname = new URL(path).hostname;
    return hostname.length === 0 ? null : normalizeHostname(hostname);
  } catch {
    return null;
  }
}

/**
 * Whether a request sent to `host` with request target `path` may carry the key: the host it is
 * sent to, and the one an absolute-form target names, must both be allowed.
 */
export function mayCarryKey(allowed: HostPredicate, host: string | undefined, path: unknown): boolean {
  if (host === undefined || !allowed(host)) return false;
  const target = absoluteTargetHost(path);
  return target === undefined || (target !== null && allowed(target));
}
