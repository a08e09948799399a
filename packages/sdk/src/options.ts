import { ConfigError, describeUntrusted, isValidKey } from '@devstack/core';

/**
 * `init()` is usually given options straight from JavaScript or the environment, where the type
 * checker is no help: every option is checked for its type (and unknown names, usually typos) before
 * anything is installed, so a mistake is one ConfigError naming the option, not a TypeError later
 * or a string read letter by letter. The values themselves are checked where they are used.
 */
const CHECKS: Readonly<Record<string, (value: unknown) => string | undefined>> = {
  keyName: (v) => (typeof v === 'string' ? undefined : 'must be a string (a header name)'),
  domains: (v) =>
    Array.isArray(v) && v.every((d) => typeof d === 'string' && d.length > 0)
      ? undefined
      : `must be a list of domain names${typeof v === 'string' ? ` (write [${JSON.stringify(v)}])` : ''}`,
  lane: (v) => (typeof v === 'string' ? undefined : "must be a string: 'base' or a routing key"),
  service: (v) => (isValidKey(v) ? undefined : 'must be a registry service name (a DNS-1123 label: a-z, 0-9, \'-\', at most 63 characters)'),
  registry: (v) =>
    (typeof v === 'string' && v.length > 0) || isSource(v) ? undefined : "must be a registry file path, 'k8s', or a RegistrySource (start, current, subscribe, onError, close)",
  kubernetes: (v) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'must be an object of Kubernetes source options';
    const unknown = Object.keys(v).filter((k) => !KUBERNETES_OPTIONS.includes(k));
    return unknown.length === 0 ? undefined : `has unknown options ${unknown.map((k) => describeUntrusted(k)).join(', ')} (known: ${KUBERNETES_OPTIONS.join(', ')})`;
  },
  namespaces: (v) =>
    Array.isArray(v) && v.every((n) => isValidKey(n))
      ? undefined
      : `must be a list of namespace names${typeof v === 'string' ? ` (write [${JSON.stringify(v)}])` : ''}`,
  relay: (v) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'must be an object of relay source options';
    const unknown = Object.keys(v).filter((k) => !RELAY_OPTIONS.includes(k));
    return unknown.length === 0 ? undefined : `has unknown options ${unknown.map((k) => describeUntrusted(k)).join(', ')} (known: ${RELAY_OPTIONS.join(', ')})`;
  },
  clusterDomain: (v) => (typeof v === 'string' && v.length > 0 ? undefined : 'must be a domain name such as cluster.local'),
  strict: (v) => (typeof v === 'boolean' ? undefined : 'must be true or false'),
  allowHosts: (v) => (typeof v === 'function' || Array.isArray(v) ? undefined : 'must be a list of host names and *.suffix patterns, or a predicate'),
  denyHosts: (v) => (typeof v === 'function' || Array.isArray(v) ? undefined : 'must be a list of host names and *.suffix patterns, or a predicate'),
  connectTimeoutMs: (v) => (Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 3_600_000 ? undefined : 'must be a whole number of milliseconds from 1 to 3600000'),
  passiveHealth: (v) => {
    if (v === false) return undefined;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'must be false or an object of passive health options';
    const unknown = Object.keys(v).filter((k) => !PASSIVE_HEALTH_OPTIONS.includes(k));
    return unknown.length === 0 ? undefined : `has unknown options ${unknown.map((k) => describeUntrusted(k)).join(', ')} (known: ${PASSIVE_HEALTH_OPTIONS.join(', ')})`;
  },
  metrics: (v) =>
    typeof v === 'object' && v !== null && typeof (v as { getSingleMetric?: unknown }).getSingleMetric === 'function'
      ? undefined
      : "must be a prom-client Registry (such as prom-client's `register`)",
};

/** What core's PassiveHealth takes; their values are checked when the router is made. */
const PASSIVE_HEALTH_OPTIONS = ['ejectAfter', 'baseEjectionMs', 'maxEjectionMs', 'maxTracked', 'now'];

/** What `createKubernetesSource` takes; their values are checked there, when the source is opened. */
const KUBERNETES_OPTIONS = ['namespaces', 'allNamespaces', 'kubeconfig', 'targets', 'watchIdleTimeoutMs', 'requestTimeoutMs', 'pageSize', 'maxDelayMs', 'reportIntervalMs'];

/** What the relay source (`@devstack/registry-relay`) takes besides its URL; checked there too. */
const RELAY_OPTIONS = ['namespace', 'namespaces', 'idleTimeoutMs', 'connectTimeoutMs', 'maxMessageBytes', 'reportIntervalMs', 'backoff'];

function isSource(v: unknown): boolean {
  if (typeof v !== 'object' || v === null) return false;
  const s = v as Record<string, unknown>;
  return ['start', 'current', 'subscribe', 'onError', 'close'].every((m) => typeof s[m] === 'function');
}

function got(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `the string ${describeUntrusted(value)}`;
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'function') return 'a function';
  return `${String(value)} (${typeof value})`;
}

/** Throws a ConfigError listing every option of the wrong type and every unknown option. */
export function checkInitOptions(options: unknown): void {
  if (options === undefined) return;
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new ConfigError([`init: options must be an object, got ${got(options)}`]);
  }
  const problems: string[] = [];
  for (const [name, value] of Object.entries(options)) {
    const check = Object.hasOwn(CHECKS, name) ? CHECKS[name] : undefined;
    if (check === undefined) {
      problems.push(`init: unknown option ${describeUntrusted(name)} (known: ${Object.keys(CHECKS).join(', ')})`);
      continue;
    }
    // An option set to undefined is an option not given (`registry: process.env.X`).
    if (value === undefined) continue;
    const problem = check(value);
    if (problem !== undefined) problems.push(`init: ${name} ${problem}, got ${got(value)}`);
  }
  if (problems.length > 0) throw new ConfigError(problems);
}
