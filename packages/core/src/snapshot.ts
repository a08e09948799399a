import { RegistryValidationError } from './errors.js';
import { describeUntrusted, isValidKey } from './key.js';
import type { Decision } from './resolve.js';

/**
 * How the sidecar speaks to a target: HTTP/1.1, or HTTP/2 over cleartext with prior knowledge
 * (gRPC servers), which has no upgrade handshake to discover it, so the registry must say so.
 */
export type TargetProtocol = 'http1' | 'h2c';

export interface Target {
  /** Origin of the upstream, `http://10.0.0.7:8080`: scheme, host and port, nothing else. */
  readonly origin: string;
  readonly ready: boolean;
  readonly protocol: TargetProtocol;
}

export interface Lane {
  readonly service: string;
  /** The routing key of a feature copy; null for base. */
  readonly key: string | null;
  /** `base` or the key: what the lane response header says. */
  readonly name: string;
  readonly targets: readonly Target[];
  /** The ready subset of `targets`, computed once. */
  readonly ready: readonly Target[];
}

export interface ServiceEntry {
  readonly name: string;
  readonly base: Lane;
  readonly features: ReadonlyMap<string, Lane>;
  /** Decisions made once per snapshot, so resolving allocates nothing. */
  readonly decisions: ServiceDecisions;
}

export interface ServiceDecisions {
  readonly noKey: Decision;
  readonly invalidKey: Decision;
  readonly unknownKey: Decision;
  readonly noCopy: Decision;
  readonly strictUnknownKey: Decision;
  /** Per key with a copy of this service: `match`, or `not-ready` (base). One lookup decides. */
  readonly byKey: ReadonlyMap<string, Decision>;
  /** The same in strict mode: `match`, or `not-ready` (reject). */
  readonly strictByKey: ReadonlyMap<string, Decision>;
}

/** How many keys a stack may have above a key: `f2 -> feature1` is one. Deeper stacks are refused. */
export const MAX_STACK_DEPTH = 8;

/** A stack the snapshot refused: its key resolves as if it stacked on nothing. */
export interface StackProblem {
  readonly key: string;
  readonly problem: 'cycle' | 'too-deep';
  /** The key and the keys above it, as far as they were followed. */
  readonly chain: readonly string[];
}

/** The stacks of a snapshot, resolved once: what the decisions of every service are built from. */
interface Stacking {
  /** key -> the key it stacks on, every entry given (refused ones included). */
  readonly stacks: ReadonlyMap<string, string>;
  /** Accepted stacked key -> the keys above it, nearest first. */
  readonly chains: ReadonlyMap<string, readonly string[]>;
  /** A key -> the accepted stacked keys with it in their chain: which stacks a copy of it serves. */
  readonly below: ReadonlyMap<string, readonly string[]>;
  readonly problems: readonly StackProblem[];
}

const NO_STACKS: Stacking = Object.freeze({ stacks: new Map(), chains: new Map(), below: new Map(), problems: Object.freeze([]) });

export interface Snapshot {
  /** Increases with every snapshot a source publishes. */
  readonly version: number;
  /** Where the snapshot came from (a file path, `kubernetes`), for logs and `/routes`. */
  readonly source: string;
  /** Milliseconds since the epoch when the source produced it (given by the source: this is pure). */
  readonly createdAt: number;
  readonly services: ReadonlyMap<string, ServiceEntry>;
  /** Every key that has a feature copy of at least one service. */
  readonly keys: ReadonlySet<string>;
  /** `keys`, and every stacked key with a key of `keys` in its stack: the keys that are not unknown. */
  readonly known: ReadonlySet<string>;
  /** key -> the key it stacks on, as given (refused ones included). Empty without stacks. */
  readonly stacks: ReadonlyMap<string, string>;
  /** Stacks refused (a cycle, deeper than MAX_STACK_DEPTH): those keys resolve unstacked. */
  readonly stackProblems: readonly StackProblem[];
  /** @internal */
  readonly stacking: Stacking;
}

export type TargetInput = string | { url: string; ready?: boolean; protocol?: TargetProtocol };

export interface ServiceInput {
  base: TargetInput | readonly TargetInput[];
  features?: Readonly<Record<string, TargetInput | readonly TargetInput[]>>;
}

export interface RegistryInput {
  services: Readonly<Record<string, ServiceInput>>;
  /** key -> the key it stacks on: a request with the key goes to the first copy up its stack. */
  stacks?: Readonly<Record<string, string>>;
}

export interface SnapshotMeta {
  version?: number;
  source?: string;
  createdAt?: number;
}

/** The lane name of base itself, so never a routing key (DESIGN: reserved key). */
const RESERVED_KEY = 'base';

const SERVICE_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const TARGET_FIELDS = new Set(['url', 'ready', 'protocol']);

function isTargetProtocol(value: unknown): value is TargetProtocol {
  return value === 'http1' || value === 'h2c';
}

function parseTarget(raw: unknown, where: string, problems: string[]): Target | undefined {
  let url: unknown = raw;
  let ready = true;
  let protocol: TargetProtocol = 'http1';
  if (isRecord(raw)) {
    url = raw['url'];
    if (raw['ready'] !== undefined) {
      if (typeof raw['ready'] !== 'boolean') {
        problems.push(`${where}.ready: must be true or false`);
        return undefined;
      }
      ready = raw['ready'];
    }
    if (raw['protocol'] !== undefined) {
      // Exactly two spellings: a near miss such as `http2` or `grpc` must not pass for one of them.
      if (!isTargetProtocol(raw['protocol'])) {
        problems.push(`${where}.protocol: must be http1 or h2c, not ${describeUntrusted(raw['protocol'])}`);
        return undefined;
      }
      protocol = raw['protocol'];
    }
    const extra = Object.keys(raw).filter((k) => !TARGET_FIELDS.has(k));
    if (extra.length > 0) problems.push(`${where}: unknown field${extra.length > 1 ? 's' : ''} ${extra.map((k) => describeUntrusted(k)).join(', ')}`);
  }
  if (typeof url !== 'string') {
    problems.push(`${where}: expected a URL such as http://127.0.0.1:7002`);
    return undefined;
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    problems.push(`${where}: ${describeUntrusted(url)} is not a URL`);
    return undefined;
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    problems.push(`${where}: ${describeUntrusted(url)} must use http or https`);
    return undefined;
  }
  if (parsed.username || parsed.password || parsed.search || parsed.hash || (parsed.pathname !== '/' && parsed.pathname !== '')) {
    problems.push(`${where}: ${describeUntrusted(url)} must be an origin only (no path, query, credentials)`);
    return undefined;
  }
  if (protocol === 'h2c' && parsed.protocol === 'https:') {
    // HTTP/2 over TLS is negotiated by ALPN, not declared; h2c would mean skipping the TLS handshake.
    problems.push(`${where}: h2c is HTTP/2 over cleartext; an https target (${describeUntrusted(url)}) cannot use it: give an http:// URL`);
    return undefined;
  }
  return Object.freeze({ origin: parsed.origin, ready, protocol });
}

function parseTargets(raw: unknown, where: string, problems: string[]): Target[] {
  const list = Array.isArray(raw) ? raw : [raw];
  const out: Target[] = [];
  list.forEach((item, i) => {
    const target = parseTarget(item, Array.isArray(raw) ? `${where}[${i}]` : where, problems);
    if (target) out.push(target);
  });
  return out;
}

function makeLane(service: string, key: string | null, targets: Target[]): Lane {
  return Object.freeze({
    service,
    key,
    name: key ?? 'base',
    targets: Object.freeze(targets),
    ready: Object.freeze(targets.filter((t) => t.ready)),
  });
}

function decision(outcome: Decision['outcome'], reason: Decision['reason'], service: string, lane: Lane | undefined): Decision {
  return Object.freeze({ outcome, reason, service, lane });
}

function makeDecisions(name: string, base: Lane, features: ReadonlyMap<string, Lane>, stacking: Stacking): ServiceDecisions {
  const byKey = new Map<string, Decision>();
  const strictByKey = new Map<string, Decision>();
  for (const [key, lane] of features) {
    if (lane.ready.length > 0) {
      const match = decision('feature', 'match', name, lane);
      byKey.set(key, match);
      strictByKey.set(key, match);
    } else {
      byKey.set(key, decision('base', 'not-ready', name, base));
      strictByKey.set(key, decision('reject', 'not-ready', name, lane));
    }
  }
  // Only the stacked keys with a copy of this service in their stack decide differently from
  // unstacked keys, so the work follows this service's copies, not the number of stacks.
  if (stacking.below.size > 0) {
    const seen = new Set<string>();
    for (const key of features.keys()) {
      for (const stacked of stacking.below.get(key) ?? []) {
        if (seen.has(stacked)) continue;
        seen.add(stacked);
        if ((features.get(stacked)?.ready.length ?? 0) > 0) continue;
        let dead: Lane | undefined = features.get(stacked);
        let served: Lane | undefined;
        for (const above of stacking.chains.get(stacked)!) {
          const lane = features.get(above);
          if (lane === undefined) continue;
          if (lane.ready.length > 0) {
            served = lane;
            break;
          }
          dead ??= lane;
        }
        if (served !== undefined) {
          const d = decision('feature', 'stacked', name, served);
          byKey.set(stacked, d);
          strictByKey.set(stacked, d);
        } else if (dead !== undefined) {
          byKey.set(stacked, decision('base', 'not-ready', name, base));
          strictByKey.set(stacked, decision('reject', 'not-ready', name, dead));
        }
      }
    }
  }
  return Object.freeze({
    noKey: decision('base', 'no-key', name, base),
    invalidKey: decision('base', 'invalid-key', name, base),
    unknownKey: decision('base', 'unknown-key', name, base),
    noCopy: decision('base', 'no-copy', name, base),
    strictUnknownKey: decision('reject', 'unknown-key', name, undefined),
    byKey,
    strictByKey,
  });
}

/** One service's entry, validated; its feature keys are added to `keys`. */
function buildEntry(name: string, raw: unknown, problems: string[], keys: Set<string>, stacking: Stacking): ServiceEntry | undefined {
  const where = `services.${describeUntrusted(name).slice(1, -1)}`;
  if (!SERVICE_NAME.test(name)) problems.push(`${where}: service name must be a DNS-1123 label (a-z, 0-9, '-', at most 63 characters)`);
  if (!isRecord(raw)) {
    problems.push(`${where}: expected { base, features }`);
    return undefined;
  }
  const extra = Object.keys(raw).filter((k) => k !== 'base' && k !== 'features');
  if (extra.length > 0) problems.push(`${where}: unknown field${extra.length > 1 ? 's' : ''} ${extra.map((k) => describeUntrusted(k)).join(', ')}`);
  if (raw['base'] === undefined) problems.push(`${where}.base: required (one URL or a list)`);
  // Base is where every request without a copy goes: a service with no base target cannot serve.
  else if (Array.isArray(raw['base']) && raw['base'].length === 0) problems.push(`${where}.base: empty list: base needs at least one URL`);
  const base = makeLane(name, null, raw['base'] === undefined ? [] : parseTargets(raw['base'], `${where}.base`, problems));
  const features = new Map<string, Lane>();
  const rawFeatures = raw['features'] ?? {};
  if (!isRecord(rawFeatures)) {
    problems.push(`${where}.features: expected a mapping of routing key to URL(s)`);
  } else {
    for (const [key, targets] of Object.entries(rawFeatures)) {
      const fwhere = `${where}.features.${describeUntrusted(key).slice(1, -1)}`;
      if (!isValidKey(key)) {
        problems.push(`${fwhere}: routing key must be a DNS-1123 label (a-z, 0-9, '-', at most 63 characters)`);
        continue;
      }
      if (key === RESERVED_KEY) {
        problems.push(`${fwhere}: "base" is reserved: the lane header could not tell this copy from base`);
        continue;
      }
      features.set(key, makeLane(name, key, parseTargets(targets, fwhere, problems)));
      keys.add(key);
    }
  }
  return Object.freeze({ name, base, features, decisions: makeDecisions(name, base, features, stacking) });
}

function parseStacks(raw: unknown, problems: string[]): Map<string, string> {
  const stacks = new Map<string, string>();
  if (raw === undefined) return stacks;
  if (!isRecord(raw)) {
    problems.push('stacks: expected a mapping of routing key to the key it stacks on');
    return stacks;
  }
  for (const [key, parent] of Object.entries(raw)) {
    const where = `stacks.${describeUntrusted(key).slice(1, -1)}`;
    if (!isValidKey(key)) problems.push(`${where}: routing key must be a DNS-1123 label (a-z, 0-9, '-', at most 63 characters)`);
    else if (key === RESERVED_KEY) problems.push(`${where}: "base" is reserved: it is not a routing key and stacks on nothing`);
    else if (typeof parent !== 'string' || !isValidKey(parent)) problems.push(`${where}: must name a routing key (a DNS-1123 label), not ${describeUntrusted(parent)}`);
    // Every key already ends at base: stacking on it would only say so again, or hide a typo.
    else if (parent === RESERVED_KEY) problems.push(`${where}: "base" is reserved: every key falls back to base without a stack`);
    else stacks.set(key, parent);
  }
  return stacks;
}

/** Follows every key's stack once; cycles and stacks deeper than MAX_STACK_DEPTH are refused. */
function resolveStacks(stacks: ReadonlyMap<string, string>): Stacking {
  if (stacks.size === 0) return NO_STACKS;
  const chains = new Map<string, readonly string[]>();
  const below = new Map<string, string[]>();
  const problems: StackProblem[] = [];
  for (const key of stacks.keys()) {
    const chain: string[] = [];
    let problem: StackProblem['problem'] | undefined;
    // Bounded: at most MAX_STACK_DEPTH + 1 steps whatever the stacks say.
    for (let at = stacks.get(key); at !== undefined; at = stacks.get(at)) {
      if (at === key || chain.includes(at)) {
        problem = 'cycle';
        chain.push(at);
        break;
      }
      chain.push(at);
      if (chain.length > MAX_STACK_DEPTH) {
        problem = 'too-deep';
        break;
      }
    }
    if (problem !== undefined) {
      problems.push(Object.freeze({ key, problem, chain: Object.freeze([key, ...chain]) }));
      continue;
    }
    chains.set(key, Object.freeze(chain));
    for (const above of [key, ...chain]) {
      let list = below.get(above);
      if (list === undefined) below.set(above, (list = []));
      list.push(key);
    }
  }
  return Object.freeze({ stacks, chains, below, problems: Object.freeze(problems) });
}

function freeze(services: Map<string, ServiceEntry>, keys: Set<string>, stacking: Stacking, meta: SnapshotMeta): Snapshot {
  let known: ReadonlySet<string> = keys;
  if (stacking.chains.size > 0) {
    const all = new Set(keys);
    for (const [key, chain] of stacking.chains) if (!keys.has(key) && chain.some((k) => keys.has(k))) all.add(key);
    known = all;
  }
  return Object.freeze({
    version: meta.version ?? 1,
    source: meta.source ?? 'memory',
    createdAt: meta.createdAt ?? 0,
    services,
    keys,
    known,
    stacks: stacking.stacks,
    stackProblems: stacking.problems,
    stacking,
  });
}

/**
 * Validates a registry description and freezes it into a snapshot. Every problem is reported at
 * once in a RegistryValidationError, each with the path of the offending field.
 */
export function buildSnapshot(input: unknown, meta: SnapshotMeta = {}): Snapshot {
  const problems: string[] = [];
  const services = new Map<string, ServiceEntry>();
  const keys = new Set<string>();
  if (!isRecord(input) || !isRecord(input['services'])) {
    throw new RegistryValidationError(['services: expected a mapping of service name to { base, features }'], { source: meta.source });
  }
  const extraTop = Object.keys(input).filter((k) => k !== 'services' && k !== 'stacks');
  if (extraTop.length > 0) problems.push(`unknown top-level field${extraTop.length > 1 ? 's' : ''} ${extraTop.map((k) => describeUntrusted(k)).join(', ')}`);
  const stacking = resolveStacks(parseStacks(input['stacks'], problems));
  for (const [name, raw] of Object.entries(input['services'])) {
    const entry = buildEntry(name, raw, problems, keys, stacking);
    if (entry !== undefined) services.set(name, entry);
  }
  if (problems.length > 0) throw new RegistryValidationError(problems, { source: meta.source });
  return freeze(services, keys, stacking, meta);
}

function sameStacks(a: ReadonlyMap<string, string>, b: ReadonlyMap<string, string>): boolean {
  if (a.size !== b.size) return false;
  for (const [key, parent] of a) if (b.get(key) !== parent) return false;
  return true;
}

/**
 * A new snapshot from `previous` with some services replaced (a description) or removed
 * (undefined): the others keep their entries, decisions and all, so the cost follows the change,
 * not the registry. Validated like `buildSnapshot`; on any problem nothing changes and it throws.
 */
export function updateSnapshot(
  previous: Snapshot,
  changes: ReadonlyMap<string, ServiceInput | undefined>,
  meta: SnapshotMeta = {},
  stacks?: Readonly<Record<string, string>>,
): Snapshot {
  const problems: string[] = [];
  let stacking = previous.stacking;
  let restack = false;
  if (stacks !== undefined) {
    const parsed = parseStacks(stacks, problems);
    if (!sameStacks(parsed, previous.stacking.stacks)) {
      stacking = resolveStacks(parsed);
      restack = true;
    }
  }
  const services = new Map(previous.services);
  // New stacks change what every service decides for the keys concerned: rare, so all are redone.
  if (restack) {
    for (const [name, entry] of services) {
      services.set(name, Object.freeze({ ...entry, decisions: makeDecisions(name, entry.base, entry.features, stacking) }));
    }
  }
  const added = new Set<string>();
  for (const [name, raw] of changes) {
    if (raw === undefined) {
      services.delete(name);
      continue;
    }
    const entry = buildEntry(name, raw, problems, added, stacking);
    if (entry !== undefined) services.set(name, entry);
  }
  if (problems.length > 0) throw new RegistryValidationError(problems, { source: meta.source });
  // Keys with a copy anywhere: only a removed or replaced service can take one away.
  const keys = new Set<string>();
  for (const entry of services.values()) for (const key of entry.features.keys()) keys.add(key);
  return freeze(services, keys, stacking, meta);
}

/** The snapshot as plain JSON (for `/routes` and tests). */
export function snapshotToJSON(snapshot: Snapshot): object {
  const services: Record<string, unknown> = {};
  for (const [name, entry] of snapshot.services) {
    const features: Record<string, unknown> = {};
    for (const [key, lane] of entry.features) features[key] = lane.targets;
    services[name] = { base: entry.base.targets, features };
  }
  const json: Record<string, unknown> = { version: snapshot.version, source: snapshot.source, createdAt: new Date(snapshot.createdAt).toISOString(), services };
  if (snapshot.stacks.size > 0) {
    json['stacks'] = Object.fromEntries(snapshot.stacks);
    json['stackProblems'] = snapshot.stackProblems;
  }
  return json;
}
