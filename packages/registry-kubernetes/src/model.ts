import { FEATURE_LABEL, SERVICE_LABEL, describeUntrusted, isValidKey, type RegistryInput, type TargetInput, type TargetProtocol } from '@devstack/core';

/** The fields of a core/v1 Service that routing reads. */
export interface ServiceObject {
  metadata?: {
    name?: string;
    namespace?: string;
    uid?: string;
    creationTimestamp?: string | Date;
    labels?: Record<string, string>;
    /** Only `devstack.io/stack-on` is read. */
    annotations?: Record<string, string>;
  };
  spec?: {
    ports?: Array<{ name?: string; port?: number; protocol?: string; appProtocol?: string }>;
  };
}

/** The fields of a discovery.k8s.io/v1 EndpointSlice that routing reads. */
export interface EndpointSliceObject {
  metadata?: { name?: string; namespace?: string; labels?: Record<string, string> };
  addressType?: string;
  endpoints?: Array<{ addresses?: string[]; conditions?: { ready?: boolean | null; serving?: boolean | null; terminating?: boolean | null } }>;
  ports?: Array<{ name?: string | null; port?: number | null; protocol?: string | null }>;
}

/**
 * `service`: one target per Service, its cluster DNS name (kube-proxy balances over pods);
 * `endpoints`: the pods' addresses from its EndpointSlices (the sidecar balances itself).
 */
export type TargetMode = 'service' | 'endpoints';

export interface ModelOptions {
  targets: TargetMode;
  clusterDomain: string;
}

/** The label EndpointSlices carry to name their Service. */
export const SLICE_SERVICE_LABEL = 'kubernetes.io/service-name';

export interface Model {
  input: RegistryInput;
  /** Objects that could not be used, and why; routing goes on without them. */
  problems: string[];
}

interface Claim {
  service: string;
  key: string | null;
  object: ServiceObject;
  ref: string;
  created: number;
}

function ref(o: { metadata?: { name?: string; namespace?: string } }): string {
  return `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;
}

/** The port routing uses and how to speak to it. */
export interface RoutedPort {
  name: string;
  port: number;
  protocol: TargetProtocol;
}

/**
 * `appProtocol` values that mean HTTP/2 with prior knowledge over cleartext: Kubernetes' own
 * `kubernetes.io/h2c`, `kubernetes.io/grpc` (listed by earlier Kubernetes API docs, so still
 * found in manifests), and the unprefixed `h2c` and `grpc`. Targets here are always http://, so
 * gRPC can only mean h2c. Compared without regard to case, as IANA service names are (RFC 6335).
 */
const H2C_APP_PROTOCOLS = new Set(['kubernetes.io/h2c', 'kubernetes.io/grpc', 'h2c', 'grpc']);

/** The target protocol a Service port's `appProtocol` asks for; anything else is HTTP/1.1. */
export function appProtocolToTarget(appProtocol: string | null | undefined): TargetProtocol {
  return typeof appProtocol === 'string' && H2C_APP_PROTOCOLS.has(appProtocol.toLowerCase()) ? 'h2c' : 'http1';
}

/** Port names that mark a Service's HTTP/2 port when it has no port named `http`. */
const H2C_PORT_NAMES = new Set(['grpc', 'h2c']);

/**
 * The port routing uses: the one named `http`, else the first named `grpc` or `h2c` (so a gRPC
 * Service with a metrics port listed first still routes to gRPC), else the only or first TCP
 * port. Its protocol comes from its `appProtocol` alone: a port name never makes it h2c.
 */
export function pickPort(service: ServiceObject): RoutedPort | undefined {
  const tcp = (service.spec?.ports ?? []).filter((p) => (p.protocol ?? 'TCP') === 'TCP' && typeof p.port === 'number');
  const chosen = tcp.find((p) => p.name === 'http') ?? tcp.find((p) => p.name !== undefined && H2C_PORT_NAMES.has(p.name)) ?? tcp[0];
  return chosen === undefined ? undefined : { name: chosen.name ?? '', port: chosen.port!, protocol: appProtocolToTarget(chosen.appProtocol) };
}

/**
 * An endpoint takes new requests when `ready` is true or unset and it is not terminating (a
 * terminating endpoint may still be `serving` the requests it has, but gets no new ones).
 */
export function endpointReady(conditions: { ready?: boolean | null; terminating?: boolean | null } | undefined): boolean {
  return conditions?.ready !== false && conditions?.terminating !== true;
}

function hostForUrl(address: string, addressType: string | undefined): string {
  return addressType === 'IPv6' || address.includes(':') ? `[${address}]` : address;
}

function targetsOf(claim: Claim, slices: readonly EndpointSliceObject[], port: RoutedPort, options: ModelOptions): TargetInput[] {
  const { name, namespace } = claim.object.metadata!;
  // http1 is the registry default, so it is left out and an HTTP/1.1 description reads as before.
  const protocol = port.protocol === 'h2c' ? { protocol: port.protocol } : {};
  const serviceUrl = `http://${name}.${namespace}.svc.${options.clusterDomain}:${port.port}`;
  const endpoints: Array<{ url: string; ready: boolean; protocol?: TargetProtocol }> = [];
  const seen = new Map<string, { url: string; ready: boolean }>();
  for (const slice of slices) {
    // Slice ports carry the Service port's name ('' for an unnamed single port) and the pod's port.
    const slicePort = (slice.ports ?? []).find((p) => (p.name ?? '') === port.name && (p.protocol ?? 'TCP') === 'TCP');
    if (slicePort === undefined || typeof slicePort.port !== 'number') continue;
    if (slice.addressType === 'FQDN') continue;
    for (const endpoint of slice.endpoints ?? []) {
      const ready = endpointReady(endpoint.conditions);
      for (const address of endpoint.addresses ?? []) {
        const url = `http://${hostForUrl(address, slice.addressType)}:${slicePort.port}`;
        const known = seen.get(url);
        if (known !== undefined) {
          known.ready ||= ready;
          continue;
        }
        const target = { url, ready, ...protocol };
        seen.set(url, target);
        endpoints.push(target);
      }
    }
  }
  const anyReady = endpoints.some((e) => e.ready);
  if (options.targets === 'service') return [{ url: serviceUrl, ready: anyReady, ...protocol }];
  // No endpoint at all: the lane still exists (a copy is known, base is known) but is not ready.
  return endpoints.length > 0 ? endpoints : [{ url: serviceUrl, ready: false, ...protocol }];
}

export function created(o: ServiceObject): number {
  const t = o.metadata?.creationTimestamp;
  const ms = t instanceof Date ? t.getTime() : typeof t === 'string' ? Date.parse(t) : Number.NaN;
  return Number.isNaN(ms) ? Number.POSITIVE_INFINITY : ms;
}

/**
 * Services labelled `devstack.io/service` (and `devstack.io/feature` for a copy) and their
 * EndpointSlices, as a registry description. Pure: the same objects give the same description.
 * Two Services claiming the same service and key: the older one wins (then namespace/name order)
 * and the other is reported.
 */
export function buildModel(services: Iterable<ServiceObject>, slices: Iterable<EndpointSliceObject>, options: ModelOptions): Model {
  const problems: string[] = [];
  const claimed = new Map<string, Claim[]>();
  for (const object of services) {
    const labels = object.metadata?.labels ?? {};
    const service = labels[SERVICE_LABEL];
    if (service === undefined) continue;
    const where = `Service ${describeUntrusted(ref(object))}`;
    if (!isValidKey(service)) {
      problems.push(`${where}: label ${SERVICE_LABEL}=${describeUntrusted(service)} is not a DNS-1123 label`);
      continue;
    }
    const rawKey = labels[FEATURE_LABEL];
    if (rawKey !== undefined && (!isValidKey(rawKey) || rawKey === 'base')) {
      problems.push(`${where}: label ${FEATURE_LABEL}=${describeUntrusted(rawKey)} is not a routing key (a DNS-1123 label other than "base")`);
      continue;
    }
    if (object.metadata?.name === undefined || object.metadata.namespace === undefined) continue;
    const claim: Claim = { service, key: rawKey ?? null, object, ref: ref(object), created: created(object) };
    const id = `${service}\u0000${claim.key ?? ''}`;
    const list = claimed.get(id);
    if (list === undefined) claimed.set(id, [claim]);
    else list.push(claim);
  }
  // The oldest claim wins (then namespace/name), whatever order the objects came in.
  const claims = new Map<string, Claim>();
  for (const [id, list] of claimed) {
    list.sort((a, b) => a.created - b.created || (a.ref < b.ref ? -1 : a.ref > b.ref ? 1 : 0));
    const winner = list[0]!;
    claims.set(id, winner);
    if (list.length === 1) continue;
    const what = `service ${winner.service}, ${winner.key === null ? 'base' : `key ${winner.key}`}`;
    const refs = list.map((c) => c.ref);
    const who = list.length === 2 ? `Services ${refs[0]} and ${refs[1]} both claim` : `Services ${refs.slice(0, -1).join(', ')} and ${refs[refs.length - 1]} all claim`;
    problems.push(`${who} ${what}: ${winner.ref} (the older) is used`);
  }

  const slicesByService = new Map<string, EndpointSliceObject[]>();
  for (const slice of slices) {
    const owner = slice.metadata?.labels?.[SLICE_SERVICE_LABEL];
    if (owner === undefined) continue;
    const id = `${slice.metadata?.namespace ?? ''}/${owner}`;
    let list = slicesByService.get(id);
    if (list === undefined) slicesByService.set(id, (list = []));
    list.push(slice);
  }

  const out: Record<string, { base?: TargetInput[]; features: Record<string, TargetInput[]> }> = {};
  for (const claim of claims.values()) {
    const port = pickPort(claim.object);
    if (port === undefined) {
      problems.push(`Service ${claim.ref}: no TCP port to route to`);
      continue;
    }
    const targets = targetsOf(claim, slicesByService.get(claim.ref) ?? [], port, options);
    const entry = (out[claim.service] ??= { features: {} });
    if (claim.key === null) entry.base = targets;
    else entry.features[claim.key] = targets;
  }
  const input: RegistryInput = { services: {} };
  for (const [name, entry] of Object.entries(out).sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (entry.base === undefined) {
      problems.push(`service ${name}: feature copies (${Object.keys(entry.features).sort().join(', ')}) but no base Service: not routed`);
      continue;
    }
    (input.services as Record<string, unknown>)[name] = { base: entry.base, features: entry.features };
  }
  return { input, problems: problems.sort() };
}
