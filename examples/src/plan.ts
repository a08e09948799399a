/*
 * The demo fleet as data, with no I/O: which copies of which services run, which of them route
 * through a sidecar and which through the SDK alone, which consume the events queue, and the
 * registry that ties them together.
 * The launcher (fleet.ts) starts exactly this; the end-to-end test checks against it.
 */

export const SERVICES = ['web', 'orders', 'inventory', 'payments', 'worker'] as const;
export type ServiceName = (typeof SERVICES)[number];

/** What each service calls next over HTTP: web -> orders -> payments. */
export const DOWNSTREAM: Readonly<Record<ServiceName, ServiceName | undefined>> = { web: 'orders', orders: 'payments', inventory: undefined, payments: undefined, worker: undefined };
/** What each service calls over gRPC (before its HTTP call): orders asks inventory. */
export const GRPC_DOWNSTREAM: Readonly<Record<ServiceName, ServiceName | undefined>> = { web: undefined, orders: 'inventory', inventory: undefined, payments: undefined, worker: undefined };
/** Services that serve gRPC: their registry targets are `protocol: h2c`, and their sidecars speak HTTP/2 to the app. */
export const GRPC: ReadonlySet<ServiceName> = new Set(['inventory']);

/** The service the edge sends every request to. */
export const ENTRY: ServiceName = 'web';
/** Base domain of the edge: `example.localhost` and `<key>.example.localhost` (curl resolves *.localhost to loopback). */
export const DOMAIN = 'example.localhost';
export const BASE = 'base';

/** The demo lanes: the services each routing key has a feature copy of. */
export const FEATURES: Readonly<Record<string, readonly ServiceName[]>> = {
  feature1: ['web', 'inventory', 'payments', 'worker'],
  feature2: ['orders'],
};

/** Services whose copies run without a sidecar: the SDK routes their calls in process. */
export const PROXYLESS: ReadonlySet<ServiceName> = new Set(['orders']);

/**
 * Consumers with no port (no listener, no sidecar): every lane reads the events queue, and the SDK
 * decides from the registry which lane processes each event, so they are in the registry too.
 */
export const WORKERS: ReadonlySet<ServiceName> = new Set(['worker']);
/** The service that publishes an event (POST /events), the worker that consumes it, and the one queue every worker lane reads. */
export const PUBLISHER: ServiceName = 'web';
export const CONSUMER: ServiceName = 'worker';
export const EVENTS_QUEUE = 'demo-events';

export interface Instance {
  service: ServiceName;
  /** `base` or the routing key of the copy. */
  lane: string;
  /** Absent for workers. */
  appPort?: number;
  /** Absent for proxyless instances and workers. */
  sidecar?: { inbound: number; outbound: number; admin: number };
}

export interface Plan {
  /** Address every listener binds. */
  host: string;
  edge: { port: number; admin: number };
  /** The SQS server (fauxqs) the publisher and the workers share. */
  sqs: { port: number };
  instances: readonly Instance[];
}

/** Every (service, lane) that runs: the base of each service, then each feature copy. */
export function copies(): { service: ServiceName; lane: string }[] {
  const base = SERVICES.map((service) => ({ service, lane: BASE }));
  const features = Object.entries(FEATURES).flatMap(([lane, services]) => services.map((service) => ({ service, lane })));
  return [...base, ...features];
}

/** Ports the plan needs besides the edge's own. */
export function portsNeeded(): number {
  return 2 + copies().reduce((n, c) => n + (WORKERS.has(c.service) ? 0 : PROXYLESS.has(c.service) ? 1 : 4), 0);
}

/** Lays the fleet out on the given free ports (`portsNeeded()` of them). */
export function makePlan(host: string, edgePort: number, ports: readonly number[]): Plan {
  if (ports.length < portsNeeded()) throw new RangeError(`the demo needs ${portsNeeded()} ports, got ${ports.length}`);
  let i = 0;
  const take = () => ports[i++]!;
  const edge = { port: edgePort, admin: take() };
  const sqs = { port: take() };
  const instances = copies().map(({ service, lane }): Instance => {
    if (WORKERS.has(service)) return { service, lane };
    const appPort = take();
    if (PROXYLESS.has(service)) return { service, lane, appPort };
    return { service, lane, appPort, sidecar: { inbound: take(), outbound: take(), admin: take() } };
  });
  return { host, edge, sqs, instances };
}

/**
 * Where callers reach an instance: its sidecar's inbound listener, or the app itself when
 * proxyless. A worker listens nowhere: its URL is a placeholder under `.invalid`, a name that
 * never resolves (RFC 2606), so nothing is ever sent there; its entry says it runs and is ready.
 */
export function instanceUrl(plan: Plan, instance: Instance): string {
  if (instance.appPort === undefined) return `http://${instance.service}-${instance.lane}.invalid`;
  return `http://${plan.host}:${instance.sidecar?.inbound ?? instance.appPort}`;
}

/**
 * A registry target: a URL, or a URL and its protocol for gRPC services (HTTP/2 with prior
 * knowledge), or a worker's with its readiness written out, the field to edit to take it out of
 * its lane (`ready: false`: its events go to base).
 */
export type RegistryTarget = string | { url: string; protocol: 'h2c' } | { url: string; ready: boolean };

/** The registry file's content: `services: { name: { base, features: { key: target } } }`. */
export function registryDocument(plan: Plan): { services: Record<string, { base: RegistryTarget; features: Record<string, RegistryTarget> }> } {
  const services: Record<string, { base: RegistryTarget; features: Record<string, RegistryTarget> }> = {};
  for (const instance of plan.instances) {
    const entry = (services[instance.service] ??= { base: '', features: {} });
    const url = instanceUrl(plan, instance);
    const target: RegistryTarget = GRPC.has(instance.service) ? { url, protocol: 'h2c' } : WORKERS.has(instance.service) ? { url, ready: true } : url;
    if (instance.lane === BASE) entry.base = target;
    else entry.features[instance.lane] = target;
  }
  return { services };
}

/** The lane routing picks for a service: the key's copy where one exists, base everywhere else. */
export function expectedLane(service: ServiceName, key: string | undefined): string {
  return key !== undefined && Object.hasOwn(FEATURES, key) && FEATURES[key]!.includes(service) ? key : BASE;
}

/** The answer the fleet gives for a key (undefined, unknown or invalid: base all the way). */
export interface Hop {
  service: string;
  lane: string;
  /** The gRPC call's answer. */
  grpc?: Hop;
  /** The HTTP call's answer. */
  downstream?: Hop;
}

export function expectedReply(key: string | undefined, service: ServiceName = ENTRY): Hop {
  const hop: Hop = { service, lane: expectedLane(service, key) };
  const grpc = GRPC_DOWNSTREAM[service];
  const next = DOWNSTREAM[service];
  if (grpc !== undefined) hop.grpc = expectedReply(key, grpc);
  if (next !== undefined) hop.downstream = expectedReply(key, next);
  return hop;
}

/** `web@feature1 -> orders@base -> inventory@feature1 (gRPC) + payments@feature1`: one line for the banner. */
export function describePath(key: string | undefined, hop: Hop = expectedReply(key)): string {
  const calls = [...(hop.grpc ? [`${describePath(key, hop.grpc)} (gRPC)`] : []), ...(hop.downstream ? [describePath(key, hop.downstream)] : [])];
  return `${hop.service}@${hop.lane}${calls.length > 0 ? ` -> ${calls.join(' + ')}` : ''}`;
}

/** The async hop for a key: the publisher's lane, then the worker lane that processes its event. */
export function expectedEvent(key: string | undefined): { publisher: string; worker: string } {
  return { publisher: expectedLane(PUBLISHER, key), worker: expectedLane(CONSUMER, key) };
}

/** `web@feature1 -> SQS demo-events -> worker@feature1`: one line for the banner. */
export function describeEvent(key: string | undefined): string {
  const { publisher, worker } = expectedEvent(key);
  return `${PUBLISHER}@${publisher} -> SQS ${EVENTS_QUEUE} -> ${CONSUMER}@${worker}`;
}
