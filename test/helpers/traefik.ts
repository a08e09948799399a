/*
 * A small evaluator of Traefik's documented HTTP routing over IngressRoute objects, for checking
 * the edge routes the charts render without a Traefik binary:
 * - routers on the request's entry point are tried by priority, highest first; a route without a
 *   priority has the length of its rule as its priority;
 * - rules combine matchers with &&, || and ! and parentheses;
 * - v3 matchers: Host(`domain`), HostRegexp(`Go regexp`, matched unanchored against the host),
 *   Header(`name`, `value`), PathPrefix(`/p`);
 * - v2 matchers: Host(`a`, `b`...), HostRegexp(`{name:regexp}.domain`...) (the template syntax:
 *   literal parts are literal, the whole host must match), Headers(`name`, `value`), PathPrefix;
 * - the Middleware `headers.customRequestHeaders` sets request headers ("" removes one);
 *   basicAuth and forwardAuth are reported, not run.
 * Matchers of the other version are an error, as Traefik refuses them.
 */
import type { K8sObject } from './charts.ts';

export type TraefikVersion = 'v2' | 'v3';

export interface EdgeRequest {
  host: string;
  path?: string;
  headers?: Record<string, string>;
  entryPoint?: string;
}

export interface EdgeResult {
  ingressRoute: string;
  match: string;
  priority: number;
  /** The Kubernetes Service and port the request is sent to. */
  service: { name: string; port: number | string };
  /** The request headers after the route's middlewares (lower-case names). */
  headers: Record<string, string>;
  /** Authentication middlewares on the route: `basicAuth` or `forwardAuth`. */
  auth: string[];
}

type Matcher = (req: Required<EdgeRequest>) => boolean;

interface Route {
  match: string;
  priority?: number;
  services: { name: string; port: number | string }[];
  middlewares?: { name: string; namespace?: string }[];
}

/** Routes a request over the given IngressRoutes and Middlewares; null when no router matches. */
export function routeEdge(objects: K8sObject[], version: TraefikVersion, request: EdgeRequest): EdgeResult | null {
  const req: Required<EdgeRequest> = {
    host: request.host.toLowerCase().replace(/:\d+$/, ''),
    path: request.path ?? '/',
    headers: Object.fromEntries(Object.entries(request.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v])),
    entryPoint: request.entryPoint ?? 'web',
  };
  const routers = objects
    .filter((o) => o.kind === 'IngressRoute')
    .flatMap((ir) => {
      const spec = ir.spec as { entryPoints?: string[]; routes: Route[] };
      if (spec.entryPoints && !spec.entryPoints.includes(req.entryPoint)) return [];
      return spec.routes.map((route) => ({ ir, route, matcher: compileRule(route.match, version), priority: route.priority || route.match.length }));
    })
    .sort((a, b) => b.priority - a.priority);
  const hit = routers.find((r) => r.matcher(req));
  if (!hit) return null;
  const headers = { ...req.headers };
  const auth: string[] = [];
  for (const ref of hit.route.middlewares ?? []) {
    const mw = objects.find((o) => o.kind === 'Middleware' && o.metadata.name === ref.name && o.metadata.namespace === (ref.namespace ?? hit.ir.metadata.namespace));
    if (!mw) throw new Error(`IngressRoute ${hit.ir.metadata.name} refers to a missing Middleware ${ref.name}`);
    const spec = mw.spec as { headers?: { customRequestHeaders?: Record<string, string> }; basicAuth?: unknown; forwardAuth?: unknown };
    for (const [name, value] of Object.entries(spec.headers?.customRequestHeaders ?? {})) {
      if (value === '') delete headers[name.toLowerCase()];
      else headers[name.toLowerCase()] = value;
    }
    if (spec.basicAuth) auth.push('basicAuth');
    if (spec.forwardAuth) auth.push('forwardAuth');
  }
  return { ingressRoute: hit.ir.metadata.name, match: hit.route.match, priority: hit.priority, service: hit.route.services[0]!, headers, auth };
}

/** Parses a rule into a matcher; throws on syntax Traefik would refuse. */
export function compileRule(rule: string, version: TraefikVersion): Matcher {
  const tokens = tokenize(rule);
  let at = 0;
  const peek = () => tokens[at];
  const expect = (t: string) => {
    if (tokens[at] !== t) throw new Error(`rule ${rule}: expected ${t} at token ${at}, got ${tokens[at] ?? 'the end'}`);
    at++;
  };
  const or = (): Matcher => {
    let left = and();
    while (peek() === '||') {
      at++;
      const l = left;
      const r = and();
      left = (q) => l(q) || r(q);
    }
    return left;
  };
  const and = (): Matcher => {
    let left = unary();
    while (peek() === '&&') {
      at++;
      const l = left;
      const r = unary();
      left = (q) => l(q) && r(q);
    }
    return left;
  };
  const unary = (): Matcher => {
    const t = peek();
    if (t === '!') {
      at++;
      const inner = unary();
      return (q) => !inner(q);
    }
    if (t === '(') {
      at++;
      const inner = or();
      expect(')');
      return inner;
    }
    if (t === undefined || !/^[A-Za-z]+$/.test(t)) throw new Error(`rule ${rule}: expected a matcher, got ${t ?? 'the end'}`);
    at++;
    expect('(');
    const args: string[] = [];
    while (peek() !== ')') {
      const arg = peek();
      if (arg === undefined || !arg.startsWith('\u0000')) throw new Error(`rule ${rule}: expected a quoted argument to ${t}`);
      args.push(arg.slice(1));
      at++;
      if (peek() === ',') at++;
    }
    expect(')');
    return matcher(t, args, version, rule);
  };
  const result = or();
  if (at !== tokens.length) throw new Error(`rule ${rule}: unexpected ${tokens[at]}`);
  return result;
}

/** Tokens: operators, parentheses, commas, names, and quoted strings (marked by a leading NUL). */
function tokenize(rule: string): string[] {
  const tokens: string[] = [];
  let i = 0;
  while (i < rule.length) {
    const c = rule[i]!;
    if (/\s/.test(c)) i++;
    else if (rule.startsWith('&&', i) || rule.startsWith('||', i)) {
      tokens.push(rule.slice(i, i + 2));
      i += 2;
    } else if ('()!,'.includes(c)) {
      tokens.push(c);
      i++;
    } else if (c === '`' || c === '"') {
      const end = rule.indexOf(c, i + 1);
      if (end === -1) throw new Error(`rule ${rule}: unterminated string`);
      tokens.push(`\u0000${rule.slice(i + 1, end)}`);
      i = end + 1;
    } else {
      const name = /^[A-Za-z]+/.exec(rule.slice(i));
      if (!name) throw new Error(`rule ${rule}: unexpected ${c}`);
      tokens.push(name[0]);
      i += name[0].length;
    }
  }
  return tokens;
}

function matcher(name: string, args: string[], version: TraefikVersion, rule: string): Matcher {
  const arity = (n: number) => {
    if (args.length !== n) throw new Error(`rule ${rule}: ${name} takes ${n} argument(s) in Traefik ${version}`);
  };
  if (version === 'v3') {
    switch (name) {
      case 'Host': {
        arity(1);
        const host = args[0]!.toLowerCase();
        return (q) => q.host === host;
      }
      case 'HostRegexp': {
        arity(1);
        const re = new RegExp(args[0]!);
        return (q) => re.test(q.host);
      }
      case 'Header': {
        arity(2);
        const [key, value] = [args[0]!.toLowerCase(), args[1]!];
        return (q) => (q.headers[key] ?? '').split(',').map((v) => v.trim()).includes(value);
      }
      case 'PathPrefix':
        arity(1);
        return (q) => q.path.startsWith(args[0]!);
    }
  } else {
    switch (name) {
      case 'Host': {
        const hosts = args.map((h) => h.toLowerCase());
        return (q) => hosts.includes(q.host);
      }
      case 'HostRegexp': {
        const res = args.map(v2HostTemplate);
        return (q) => res.some((re) => re.test(q.host));
      }
      case 'Headers': {
        arity(2);
        const [key, value] = [args[0]!.toLowerCase(), args[1]!];
        return (q) => (q.headers[key] ?? '').split(',').map((v) => v.trim()).includes(value);
      }
      case 'PathPrefix':
        return (q) => args.some((p) => q.path.startsWith(p));
    }
  }
  throw new Error(`rule ${rule}: ${name} is not a Traefik ${version} matcher`);
}

/** Traefik v2's host template: `{name:regexp}` variables, literal text between them. */
function v2HostTemplate(template: string): RegExp {
  let out = '';
  let i = 0;
  while (i < template.length) {
    if (template[i] !== '{') {
      out += template[i]!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      i++;
      continue;
    }
    let level = 0;
    let end = i;
    for (; end < template.length; end++) {
      if (template[end] === '{') level++;
      else if (template[end] === '}' && --level === 0) break;
    }
    if (end === template.length) throw new Error(`host template ${template}: unbalanced braces`);
    const body = template.slice(i + 1, end);
    const colon = body.indexOf(':');
    out += `(${colon === -1 ? '[^.]+' : body.slice(colon + 1)})`;
    i = end + 1;
  }
  return new RegExp(`^${out}$`, 'i');
}
