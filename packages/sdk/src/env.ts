import { describeUntrusted, isValidKey, registryKind } from '@devstack/core';
import type { InitOptions } from './init.js';

/**
 * `init()`'s options from environment variables, the names the sidecar reads where it has the same
 * setting (a chart gives both the same values). Every bad value is a problem naming its variable;
 * none throws. Variables of the Kubernetes source are read only with `DEVSTACK_REGISTRY=k8s`.
 */
export interface EnvOptions {
  readonly options: InitOptions;
  readonly problems: readonly string[];
}

export const ENV_VARIABLES = [
  'DEVSTACK_REGISTRY',
  'DEVSTACK_DEFAULT_KEY',
  'DEVSTACK_SERVICE',
  'DEVSTACK_KEY_NAME',
  'DEVSTACK_STRICT',
  'DEVSTACK_DOMAIN',
  'DEVSTACK_CLUSTER_DOMAIN',
  'DEVSTACK_ALLOW_HOSTS',
  'DEVSTACK_DENY_HOSTS',
  'DEVSTACK_NAMESPACE',
  'DEVSTACK_ALL_NAMESPACES',
  'DEVSTACK_KUBECONFIG',
  'DEVSTACK_TARGETS',
  'DEVSTACK_WATCH_IDLE_TIMEOUT',
  'DEVSTACK_CONNECT_TIMEOUT',
  'DEVSTACK_PASSIVE_HEALTH',
  'DEVSTACK_EJECT_AFTER',
  'DEVSTACK_BASE_EJECTION',
  'DEVSTACK_MAX_EJECTION',
] as const;

type Env = Readonly<Record<string, string | undefined>>;

export function optionsFromEnv(env: Env): EnvOptions {
  const problems: string[] = [];
  const str = (name: string): string | undefined => {
    const value = env[name]?.trim();
    return value === undefined || value === '' ? undefined : value;
  };
  const list = (name: string): string[] | undefined => {
    const items = (str(name) ?? '').split(',').map((s) => s.trim()).filter((s) => s.length > 0);
    return items.length === 0 ? undefined : items;
  };
  const bool = (name: string): boolean | undefined => {
    const value = str(name);
    if (value === undefined) return undefined;
    if (/^(1|true|yes|on)$/i.test(value)) return true;
    if (/^(0|false|no|off)$/i.test(value)) return false;
    problems.push(`${name}: expected true or false, got ${describeUntrusted(value)}`);
    return undefined;
  };
  const options: InitOptions = {};
  const registry = str('DEVSTACK_REGISTRY');
  if (registry !== undefined) options.registry = registry;
  const key = str('DEVSTACK_DEFAULT_KEY');
  if (key !== undefined) {
    if (key === 'base' || isValidKey(key)) options.lane = key;
    else problems.push(`DEVSTACK_DEFAULT_KEY: ${describeUntrusted(key)} is not a routing key (a DNS-1123 label: a-z, 0-9, '-', at most 63 characters)`);
  }
  const service = str('DEVSTACK_SERVICE');
  if (service !== undefined) {
    // A service name has a key's shape (a DNS-1123 label).
    if (isValidKey(service)) options.service = service;
    else problems.push(`DEVSTACK_SERVICE: ${describeUntrusted(service)} is not a registry service name (a DNS-1123 label: a-z, 0-9, '-', at most 63 characters)`);
  }
  const keyName = str('DEVSTACK_KEY_NAME');
  if (keyName !== undefined) options.keyName = keyName;
  const strict = bool('DEVSTACK_STRICT');
  if (strict !== undefined) options.strict = strict;
  const domains = list('DEVSTACK_DOMAIN');
  if (domains !== undefined) options.domains = domains;
  const clusterDomain = str('DEVSTACK_CLUSTER_DOMAIN');
  if (clusterDomain !== undefined) options.clusterDomain = clusterDomain;
  const allow = list('DEVSTACK_ALLOW_HOSTS');
  if (allow !== undefined) options.allowHosts = allow;
  const deny = list('DEVSTACK_DENY_HOSTS');
  if (deny !== undefined) options.denyHosts = deny;
  const ms = (name: string, min: number, max: number): number | undefined => {
    const value = str(name);
    if (value === undefined) return undefined;
    if (/^[0-9]+$/.test(value) && Number(value) >= min && Number(value) <= max) return Number(value);
    problems.push(`${name}: expected a whole number from ${min} to ${max}, got ${describeUntrusted(value)}`);
    return undefined;
  };
  const connectTimeout = ms('DEVSTACK_CONNECT_TIMEOUT', 1, 3_600_000);
  if (connectTimeout !== undefined) options.connectTimeoutMs = connectTimeout;
  // The sidecar's names for the same settings (`--passive-health`, `--eject-after`, ...).
  const health = { ejectAfter: ms('DEVSTACK_EJECT_AFTER', 1, 1000), baseEjectionMs: ms('DEVSTACK_BASE_EJECTION', 1, 3_600_000), maxEjectionMs: ms('DEVSTACK_MAX_EJECTION', 1, 3_600_000) };
  const given = Object.fromEntries(Object.entries(health).filter(([, v]) => v !== undefined));
  if (bool('DEVSTACK_PASSIVE_HEALTH') === false) options.passiveHealth = false;
  else if (Object.keys(given).length > 0) options.passiveHealth = given;
  // Every mode: the fleet's `<service>.<namespace>` names get the key, and a registry follows them.
  const namespaces = list('DEVSTACK_NAMESPACE');
  if (namespaces !== undefined) options.namespaces = namespaces;
  if (registry !== undefined && registryKind(registry) === 'kubernetes') {
    const kubernetes: Record<string, unknown> = {};
    if (bool('DEVSTACK_ALL_NAMESPACES') === true) kubernetes['allNamespaces'] = true;
    const kubeconfig = str('DEVSTACK_KUBECONFIG');
    if (kubeconfig !== undefined) kubernetes['kubeconfig'] = kubeconfig;
    const targets = str('DEVSTACK_TARGETS');
    if (targets !== undefined) {
      if (targets === 'service' || targets === 'endpoints') kubernetes['targets'] = targets;
      else problems.push(`DEVSTACK_TARGETS: expected service or endpoints, got ${describeUntrusted(targets)}`);
    }
    const idle = str('DEVSTACK_WATCH_IDLE_TIMEOUT');
    if (idle !== undefined) {
      if (/^[0-9]+$/.test(idle) && Number(idle) >= 1000 && Number(idle) <= 3_600_000) kubernetes['watchIdleTimeoutMs'] = Number(idle);
      else problems.push(`DEVSTACK_WATCH_IDLE_TIMEOUT: expected a whole number of milliseconds from 1000 to 3600000, got ${describeUntrusted(idle)}`);
    }
    if (Object.keys(kubernetes).length > 0) options.kubernetes = kubernetes;
  }
  return { options, problems };
}
