import type { KubeObject } from './kube.js';

/**
 * The routes devstack-hooks added to a shared IngressRoute, as `{ "<key>": "<rule>" }` in one
 * annotation of that IngressRoute. Traefik's CRD has no free field on a route (unknown fields are
 * pruned), so the mark lives beside the routes, in the same object: one write updates both.
 * `remove` deletes only routes whose rule is exactly the one recorded for its key, so a route that
 * another team wrote by hand, even with the same header, is never touched.
 *
 * The rule alone is a route's identity: Traefik routes by it, one key has one rule, and what the
 * route forwards to (Service, port, scheme) may change under it. So a new scheme updates the
 * route in place without touching the annotation, and annotations written before schemes existed
 * still identify their routes.
 */
export const ROUTES_ANNOTATION = 'devstack.io/hook-routes';

export type RuleSyntax = 'v3' | 'v2';

/** What Traefik accepts as an IngressRoute service's `scheme` (anything else fails the route). */
export const SERVICE_SCHEMES = ['http', 'https', 'h2c'] as const;
export type ServiceScheme = (typeof SERVICE_SCHEMES)[number];

export interface RouteSpec {
  host: string;
  key: string;
  keyName: string;
  service: string;
  port: number | string;
  priority?: number | undefined;
  /** The services[] entry's `scheme`; undefined writes none (Traefik's default: http, https on port 443). */
  scheme?: ServiceScheme | undefined;
  syntax: RuleSyntax;
}

export interface Route {
  kind?: string;
  match?: string;
  priority?: number;
  services?: { name?: string; port?: number | string; scheme?: string; [field: string]: unknown }[];
  [field: string]: unknown;
}

/** `Host(`h`) && Header(`name`, `key`)`; v2 spells the header matcher `Headers`. Values are checked before. */
export function ruleFor(spec: Pick<RouteSpec, 'host' | 'key' | 'keyName' | 'syntax'>): string {
  const header = spec.syntax === 'v2' ? 'Headers' : 'Header';
  return `Host(\`${spec.host}\`) && ${header}(\`${spec.keyName}\`, \`${spec.key}\`)`;
}

export function routeFor(spec: RouteSpec): Route {
  const service = { name: spec.service, port: spec.port, ...(spec.scheme === undefined ? {} : { scheme: spec.scheme }) };
  return { kind: 'Rule', match: ruleFor(spec), ...(spec.priority === undefined ? {} : { priority: spec.priority }), services: [service] };
}

/** The recorded rules; an unreadable annotation records nothing (nothing is then ours to remove). */
export function ownedRules(object: KubeObject): Record<string, string> {
  const raw = object.metadata?.annotations?.[ROUTES_ANNOTATION];
  if (raw === undefined) return {};
  try {
    const parsed = JSON.parse(raw) as unknown;
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return {};
    return Object.fromEntries(Object.entries(parsed).filter((e): e is [string, string] => typeof e[1] === 'string'));
  } catch {
    return {};
  }
}

function withOwned(object: KubeObject, owned: Record<string, string>): KubeObject {
  const annotations = { ...object.metadata?.annotations };
  const keys = Object.keys(owned).sort();
  // Sorted, so the same set of routes always writes the same text and a rerun changes nothing.
  if (keys.length === 0) delete annotations[ROUTES_ANNOTATION];
  else annotations[ROUTES_ANNOTATION] = JSON.stringify(Object.fromEntries(keys.map((k) => [k, owned[k]])));
  return { ...object, metadata: { ...object.metadata, annotations } };
}

function routesOf(object: KubeObject): Route[] {
  const spec = object['spec'] as { routes?: unknown } | undefined;
  return Array.isArray(spec?.routes) ? (spec.routes as Route[]) : [];
}

function withRoutes(object: KubeObject, routes: Route[]): KubeObject {
  return { ...object, spec: { ...(object['spec'] as object | undefined), routes } };
}

export type AddChange = 'added' | 'updated' | 'unchanged';
export type RemoveChange = 'removed' | 'absent';

/** The IngressRoute with the key's route in it, or a conflict when a route with that rule is not ours. */
export function addRoute(object: KubeObject, spec: RouteSpec): { object: KubeObject; change: AddChange } | { conflict: string } {
  const owned = ownedRules(object);
  const wanted = routeFor(spec);
  const previous = owned[spec.key];
  const routes = routesOf(object);
  if (previous === undefined && routes.some((r) => r.match === wanted.match)) return { conflict: wanted.match! };
  // Our earlier route for this key (same rule, or an older rule after a host or syntax change).
  const ours = (r: Route) => r.match === previous || r.match === wanted.match;
  const mine = routes.filter(ours);
  if (mine.length === 1 && previous === wanted.match && sameRoute(mine[0]!, wanted)) return { object, change: 'unchanged' };
  const first = routes.findIndex(ours);
  const next = routes.filter((r) => !ours(r));
  // In place when it was there (the order of routes is the author's), else at the end.
  const merged: Route = { ...(first === -1 ? {} : routes[first]), ...wanted };
  if (spec.priority === undefined) delete merged.priority;
  next.splice(first === -1 ? next.length : Math.min(first, next.length), 0, merged);
  return { object: withOwned(withRoutes(object, next), { ...owned, [spec.key]: wanted.match! }), change: first === -1 ? 'added' : 'updated' };
}

/** The IngressRoute without the routes recorded for `key`; routes it did not add stay. */
export function removeRoute(object: KubeObject, key: string): { object: KubeObject; change: RemoveChange; removed: number } {
  const owned = ownedRules(object);
  const rule = owned[key];
  if (rule === undefined) return { object, change: 'absent', removed: 0 };
  const routes = routesOf(object);
  const next = routes.filter((r) => r.match !== rule);
  const rest = { ...owned };
  delete rest[key];
  return { object: withOwned(withRoutes(object, next), rest), change: 'removed', removed: routes.length - next.length };
}

function sameRoute(have: Route, want: Route): boolean {
  const service = have.services?.length === 1 ? have.services[0]! : undefined;
  return (
    have.match === want.match &&
    (have.kind ?? 'Rule') === want.kind &&
    have.priority === want.priority &&
    service !== undefined &&
    service.name === want.services![0]!.name &&
    String(service.port) === String(want.services![0]!.port) &&
    // No scheme and `http` may mean the same to Traefik, but the route holds what the flags asked for.
    service.scheme === want.services![0]!.scheme
  );
}
