import { parseArgs } from 'node:util';
import { ConfigError, createKeyCodec, isValidKey, describeUntrusted, registryKind } from '@devstack/core';
import { LOG_LEVELS, type LogLevel } from './log.js';
import type { SidecarOptions } from './sidecar.js';
import { isLoopbackBind } from './passthrough.js';
export { HELP } from './help.js';


/** What the command line gives: the sidecar's options, with a registry setting instead of a source. */
export interface CliConfig extends Omit<SidecarOptions, 'source' | 'logger' | 'metrics' | 'tracing' | 'edge' | 'domains' | 'strict'> {
  /** A registry file path, or `k8s`. */
  registry: string;
  /** Options of the Kubernetes source, with `--registry k8s`. */
  kubernetes?: KubernetesFlags;
  edge?: NonNullable<SidecarOptions['edge']> & { domains: string[]; dropClientKeys: boolean };
  domains: string[];
  strict: boolean;
  logLevel: LogLevel;
}

export type ParseResult = { kind: 'help' } | { kind: 'version' } | { kind: 'config'; config: CliConfig } | { kind: 'error'; problems: string[] };

const STRING_FLAGS = [
  'registry', 'outbound-port', 'outbound-host', 'inbound-port', 'inbound-host', 'app-port', 'app-host', 'edge-port', 'edge-host',
  'entry', 'admin-port', 'admin-host', 'default-key', 'key-name', 'cluster-domain', 'max-hops', 'connect-timeout', 'headers-timeout',
  'idle-timeout', 'shutdown-timeout', 'max-header-size', 'log-level', 'request-headers-timeout', 'request-body-timeout', 'response-drain-timeout',
  'kubeconfig', 'targets', 'watch-idle-timeout', 'app-protocol', 'max-in-flight', 'max-concurrent-streams', 'max-upstream-connections',
  'max-client-resets', 'max-invalid-frames', 'passive-health', 'eject-after', 'registry-request-timeout', 'registry-page-size', 'registry-max-delay', 'registry-report-interval', 'base-ejection', 'max-ejection',
] as const;
const BOOLEAN_FLAGS = ['strict', 'drop-client-keys', 'admin-expose-routes', 'all-namespaces', 'passthrough'] as const;

export interface KubernetesFlags {
  namespaces?: string[];
  allNamespaces?: boolean;
  kubeconfig?: string;
  targets?: 'service' | 'endpoints';
  watchIdleTimeoutMs?: number;
  requestTimeoutMs?: number;
  pageSize?: number;
  maxDelayMs?: number;
  reportIntervalMs?: number;
}

function envName(flag: string): string {
  return `DEVSTACK_${flag.toUpperCase().replace(/-/g, '_')}`;
}

/** `--passive-health` is on unless turned off: `--no-passive-health`, `--passive-health=false`, or its variable. */
function onByDefault(arg: string): string {
  if (arg === '--passive-health') return '--passive-health=true';
  if (arg === '--no-passive-health') return '--passive-health=false';
  return arg;
}

/** Flags win over environment variables; every problem is reported, one line each. */
export function parseConfig(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): ParseResult {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv.map(onByDefault),
      strict: true,
      allowPositionals: false,
      options: {
        ...Object.fromEntries(STRING_FLAGS.map((f) => [f, { type: 'string' as const }])),
        ...Object.fromEntries(BOOLEAN_FLAGS.map((f) => [f, { type: 'boolean' as const }])),
        domain: { type: 'string', multiple: true },
        namespace: { type: 'string', multiple: true },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
    });
  } catch (error) {
    // parseArgs explains some mistakes over several lines: one problem stays one line.
    return { kind: 'error', problems: [(error as Error).message.split('\n').join(' ')] };
  }
  const values = parsed.values as Record<string, string | boolean | string[] | undefined>;
  if (values['help']) return { kind: 'help' };
  if (values['version']) return { kind: 'version' };

  const problems: string[] = [];
  const str = (flag: string): string | undefined => {
    const v = values[flag];
    if (typeof v === 'string') return v;
    const e = env[envName(flag)];
    return e === undefined || e === '' ? undefined : e;
  };
  const bool = (flag: string): boolean => {
    if (values[flag] === true) return true;
    const e = env[envName(flag)];
    if (e === undefined || e === '') return false;
    if (/^(1|true|yes|on)$/i.test(e)) return true;
    if (!/^(0|false|no|off)$/i.test(e)) problems.push(`${envName(flag)}: expected true or false, got ${describeUntrusted(e)}`);
    return false;
  };
  const int = (flag: string, min: number, max: number): number | undefined => {
    const raw = str(flag);
    if (raw === undefined) return undefined;
    if (!/^[0-9]+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
      problems.push(`--${flag} (${envName(flag)}): expected a whole number from ${min} to ${max}, got ${describeUntrusted(raw)}`);
      return undefined;
    }
    return Number(raw);
  };
  const port = (flag: string) => int(flag, 0, 65535);

  const registry = str('registry');
  if (registry === undefined) problems.push('--registry (DEVSTACK_REGISTRY): required: the registry file to route by, or k8s');
  const list = (flag: string): string[] => {
    const raw = (values[flag] as string[] | undefined) ?? (env[envName(flag)] ?? '').split(',');
    return raw.flatMap((d) => d.split(',')).map((d) => d.trim()).filter((d) => d.length > 0);
  };
  const domains = list('domain');

  const config: CliConfig = { registry: registry ?? '', domains, strict: bool('strict'), logLevel: 'info' };
  const outboundPort = port('outbound-port');
  if (outboundPort !== undefined) config.outbound = { port: outboundPort, ...opt('host', str('outbound-host')) };
  if (bool('passthrough')) {
    const bind = str('outbound-host') ?? '127.0.0.1';
    if (str('outbound-port') === undefined) problems.push('--passthrough (DEVSTACK_PASSTHROUGH): only with --outbound-port');
    else if (!isLoopbackBind(bind)) problems.push(`--passthrough (DEVSTACK_PASSTHROUGH): needs --outbound-host on loopback (127.0.0.1 or ::1), not ${describeUntrusted(bind)}: the sidecar is never an open proxy`);
    else config.passthrough = true;
  }
  const inboundPort = port('inbound-port');
  const appPort = port('app-port');
  const rawAppProtocol = str('app-protocol');
  let appProtocol: 'http1' | 'h2c' | undefined;
  if (rawAppProtocol === 'http1' || rawAppProtocol === 'h2c') appProtocol = rawAppProtocol;
  else if (rawAppProtocol !== undefined) problems.push(`--app-protocol (DEVSTACK_APP_PROTOCOL): expected http1 or h2c, got ${describeUntrusted(rawAppProtocol)}`);
  if (rawAppProtocol !== undefined && str('inbound-port') === undefined) problems.push('--app-protocol (DEVSTACK_APP_PROTOCOL): only used with --inbound-port');
  // A flag that was given but is invalid has its own problem line; it is not also reported missing.
  if (inboundPort !== undefined) {
    if (appPort === undefined && str('app-port') === undefined) problems.push('--app-port (DEVSTACK_APP_PORT): required with --inbound-port');
    else if (appPort === 0) problems.push('--app-port (DEVSTACK_APP_PORT): must be the app\'s real port, not 0');
    else if (appPort !== undefined) config.inbound = { port: inboundPort, appPort, ...opt('host', str('inbound-host')), ...opt('appHost', str('app-host')), ...opt('appProtocol', appProtocol) };
  } else if (appPort !== undefined && str('inbound-port') === undefined) {
    problems.push('--app-port (DEVSTACK_APP_PORT): only used with --inbound-port');
  }
  const edgePort = port('edge-port');
  const entry = str('entry');
  const dropClientKeys = bool('drop-client-keys');
  if (edgePort !== undefined) {
    if (domains.length === 0) problems.push('--domain (DEVSTACK_DOMAIN): required with --edge-port');
    if (entry === undefined) problems.push('--entry (DEVSTACK_ENTRY): required with --edge-port: the service the edge routes to');
    if (entry !== undefined && domains.length > 0) config.edge = { port: edgePort, domains, entry, dropClientKeys, ...opt('host', str('edge-host')) };
  }
  const adminPort = port('admin-port');
  const exposeRoutes = bool('admin-expose-routes');
  if (adminPort !== undefined) config.admin = { port: adminPort, ...opt('host', str('admin-host')), ...(exposeRoutes ? { exposeRoutes } : {}) };
  if (str('outbound-port') === undefined && str('inbound-port') === undefined && str('edge-port') === undefined) {
    problems.push('no listener: give at least one of --outbound-port, --inbound-port or --edge-port');
  }

  const defaultKey = str('default-key');
  if (defaultKey !== undefined) {
    if (isValidKey(defaultKey)) config.defaultKey = defaultKey;
    else problems.push(`--default-key (DEVSTACK_DEFAULT_KEY): ${describeUntrusted(defaultKey)} is not a routing key (a DNS-1123 label: a-z, 0-9, '-', at most 63 characters)`);
  }
  Object.assign(
    config,
    opt('keyName', str('key-name')),
    opt('clusterDomain', str('cluster-domain')),
    opt('maxHops', int('max-hops', 1, 1000)),
    opt('connectTimeoutMs', int('connect-timeout', 1, 3_600_000)),
    opt('headersTimeoutMs', int('headers-timeout', 1, 3_600_000)),
    opt('idleTimeoutMs', int('idle-timeout', 1, 3_600_000)),
    opt('shutdownTimeoutMs', int('shutdown-timeout', 0, 3_600_000)),
    opt('maxHeaderSize', int('max-header-size', 1024, 1_048_576)),
    opt('requestHeadersTimeoutMs', int('request-headers-timeout', 1, 3_600_000)),
    opt('requestBodyTimeoutMs', int('request-body-timeout', 1, 3_600_000)),
    opt('responseDrainTimeoutMs', int('response-drain-timeout', 1, 3_600_000)),
    opt('maxInFlight', int('max-in-flight', 1, 1_000_000)),
    opt('maxConcurrentStreams', int('max-concurrent-streams', 1, 100_000)),
    opt('maxClientResets', int('max-client-resets', 1, 1_000_000)),
    opt('maxInvalidFrames', int('max-invalid-frames', 0, 1_000_000)),
  );
  const passive = str('passive-health');
  const ejection = { ...opt('ejectAfter', int('eject-after', 1, 1000)), ...opt('baseEjectionMs', int('base-ejection', 1, 3_600_000)), ...opt('maxEjectionMs', int('max-ejection', 1, 3_600_000)) };
  if (passive !== undefined && !/^(1|true|yes|on|0|false|no|off)$/i.test(passive)) problems.push(`--passive-health (DEVSTACK_PASSIVE_HEALTH): expected true or false, got ${describeUntrusted(passive)}`);
  if (passive !== undefined && /^(0|false|no|off)$/i.test(passive)) config.passiveHealth = false;
  else if (Object.keys(ejection).length > 0) {
    if ((ejection.maxEjectionMs ?? 10_000) < (ejection.baseEjectionMs ?? 1000)) problems.push(`--max-ejection (DEVSTACK_MAX_EJECTION): must not be below --base-ejection (${ejection.baseEjectionMs ?? 1000})`);
    config.passiveHealth = ejection;
  }
  // 0 lifts the bound: one upstream connection per concurrent request, as before there was one.
  const connections = int('max-upstream-connections', 0, 1_000_000);
  if (connections !== undefined) config.connections = connections === 0 ? null : connections;
  try {
    createKeyCodec({ name: config.keyName, domains });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    problems.push(...error.problems);
  }
  const kind = registry === undefined ? undefined : registryKind(registry);
  if (kind === 'relay') {
    // A relay source follows one namespace; core hands it the namespaces the Kubernetes source would read.
    const namespaces = list('namespace');
    if (namespaces.length > 1) problems.push('--namespace (DEVSTACK_NAMESPACE): a relay registry follows one namespace');
    for (const ns of namespaces) if (!isValidKey(ns)) problems.push(`--namespace (DEVSTACK_NAMESPACE): ${describeUntrusted(ns)} is not a namespace name (a DNS-1123 label)`);
    if (namespaces.length > 0) config.kubernetes = { namespaces };
  } else {
    const kubernetes = kubernetesFlags(kind === 'kubernetes', { str, bool, int, list }, problems);
    if (kubernetes !== undefined) config.kubernetes = kubernetes;
  }
  const level = str('log-level') ?? 'info';
  if ((LOG_LEVELS as readonly string[]).includes(level)) config.logLevel = level as LogLevel;
  else problems.push(`--log-level (DEVSTACK_LOG_LEVEL): expected one of ${LOG_LEVELS.join(', ')}, got ${describeUntrusted(level)}`);

  return problems.length > 0 ? { kind: 'error', problems } : { kind: 'config', config };
}

interface Readers {
  str(flag: string): string | undefined;
  bool(flag: string): boolean;
  int(flag: string, min: number, max: number): number | undefined;
  list(flag: string): string[];
}

/** The Kubernetes source's flags: only with `--registry k8s`, where they are checked; an error elsewhere. */
function kubernetesFlags(selected: boolean, r: Readers, problems: string[]): KubernetesFlags | undefined {
  const namespaces = r.list('namespace');
  const allNamespaces = r.bool('all-namespaces');
  const kubeconfig = r.str('kubeconfig');
  const targets = r.str('targets');
  const idle = r.int('watch-idle-timeout', 1000, 3_600_000);
  const bounds = {
    ...opt('requestTimeoutMs', r.int('registry-request-timeout', 100, 600_000)),
    ...opt('pageSize', r.int('registry-page-size', 1, 10_000)),
    ...opt('maxDelayMs', r.int('registry-max-delay', 0, 600_000)),
    ...opt('reportIntervalMs', r.int('registry-report-interval', 0, 3_600_000)),
  };
  if (!selected) {
    const only = ['watch-idle-timeout', 'registry-request-timeout', 'registry-page-size', 'registry-max-delay', 'registry-report-interval'].filter((f) => r.str(f) !== undefined);
    const given = [namespaces.length > 0 && 'namespace', allNamespaces && 'all-namespaces', kubeconfig && 'kubeconfig', targets && 'targets', ...only].filter((f): f is string => typeof f === 'string');
    for (const flag of given) problems.push(`--${flag} (${envName(flag)}): only used with --registry k8s`);
    return undefined;
  }
  const out: KubernetesFlags = {};
  for (const ns of namespaces) if (!isValidKey(ns)) problems.push(`--namespace (DEVSTACK_NAMESPACE): ${describeUntrusted(ns)} is not a namespace name (a DNS-1123 label)`);
  if (namespaces.length > 0 && allNamespaces) problems.push('--namespace and --all-namespaces: give one of them');
  if (namespaces.length > 0) out.namespaces = namespaces;
  if (allNamespaces) out.allNamespaces = true;
  if (kubeconfig !== undefined) out.kubeconfig = kubeconfig;
  if (targets !== undefined) {
    if (targets === 'service' || targets === 'endpoints') out.targets = targets;
    else problems.push(`--targets (DEVSTACK_TARGETS): expected service or endpoints, got ${describeUntrusted(targets)}`);
  }
  if (idle !== undefined) out.watchIdleTimeoutMs = idle;
  Object.assign(out, bounds);
  return out;
}

function opt<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}
