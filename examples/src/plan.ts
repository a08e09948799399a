/*
 * The demo fleet as data, with no I/O: which copies of which services run, which of them route
 * through a sidecar and which through the SDK alone, and the registry that ties them together.
 * The launcher (fleet.ts) starts exactly this; the end-to-end test checks against it.
 */

export const SERVICES = ['web', 'orders', 'payments'] as const;
export type ServiceName = (typeof SERVICES)[number];

/** What each service calls next: web -> orders -> payments. */
export const DOWNSTREAM: Readonly<Record<ServiceName, ServiceName | undefined>> = { web: 'orders', orders: 'payments', payments: undefined };

/** The service the edge sends every request to. */
export const ENTRY: ServiceName = 'web';
/** Base domain of the edge: `example.localhost` and `<key>.example.localhost` (curl resolves *.localhost to loopback). */
export const DOMAIN = 'example.localhost';
export const BASE = 'base';

/** The demo lanes: the services each routing key has a feature copy of. */
export const FEATURES: Readonly<Record<string, readonly ServiceName[]>> = {
  feature1: ['web', 'payments'],
  feature2: ['orders'],
};

/** Services whose copies run without a sidecar: the SDK routes their calls in process. */
export const PROXYLESS: ReadonlySet<ServiceName> = new Set(['orders']);

export interface Instance {
  service: ServiceName;
  /** `base` or the routing key of the copy. */
  lane: string;
  appPort: number;
  /** Absent for proxyless instances. */
  sidecar?: { inbound: number; outbound: number; admin: number };
}

export interface Plan {
  /** Address every listener binds. */
  host: string;
  edge: { port: number; admin: number };
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
  return 1 + copies().reduce((n, c) => n + (PROXYLESS.has(c.service) ? 1 : 4), 0);
}

/** Lays the fleet out on the given free ports (`portsNeeded()` of them). */
export function makePlan(host: string, edgePort: number, ports: readonly number[]): Plan {
  if (ports.length < portsNeeded()) throw new RangeError(`the demo needs ${portsNeeded()} ports, got ${ports.length}`);
  let i = 0;
  const take = () => ports[i++]!;
  const edge = { port: edgePort, admin: take() };
  const instances = copies().map(({ service, lane }): Instance => {
    const appPort = take();
    if (PROXYLESS.has(service)) return { service, lane, appPort };
    return { service, lane, appPort, sidecar: { inbound: take(), outbound: take(), admin: take() } };
  });
  return { host, edge, instances };
}

/** Where callers reach an instance: its sidecar's inbound listener, or the app itself when proxyless. */
export function instanceUrl(plan: Plan, instance: Instance): string {
  return `http://${plan.host}:${instance.sidecar?.inbound ?? instance.appPort}`;
}

/** The registry file's content: `services: { name: { base, features: { key: url } } }`. */
export function registryDocument(plan: Plan): { services: Record<string, { base: string; features: Record<string, string> }> } {
  const services: Record<string, { base: string; features: Record<string, string> }> = {};
  for (const instance of plan.instances) {
    const entry = (services[instance.service] ??= { base: '', features: {} });
    if (instance.lane === BASE) entry.base = instanceUrl(plan, instance);
    else entry.features[instance.lane] = instanceUrl(plan, instance);
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
  downstream?: Hop;
}

export function expectedReply(key: string | undefined, service: ServiceName = ENTRY): Hop {
  const next = DOWNSTREAM[service];
  const hop: Hop = { service, lane: expectedLane(service, key) };
  if (next !== undefined) hop.downstream = expectedReply(key, next);
  return hop;
}

/** `web@feature1 -> orders@base -> payments@feature1`: one line for the banner. */
export function describePath(key: string | undefined): string {
  const parts: string[] = [];
  for (let hop: Hop | undefined = expectedReply(key); hop; hop = hop.downstream) parts.push(`${hop.service}@${hop.lane}`);
  return parts.join(' -> ');
}
