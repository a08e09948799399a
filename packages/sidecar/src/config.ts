import { parseArgs } from 'node:util';
import { ConfigError, createKeyCodec, isValidKey, describeUntrusted } from '@devstack/core';
import { LOG_LEVELS, type LogLevel } from './log.js';
import type { SidecarOptions } from './sidecar.js';

export const HELP = `Usage: devstack-sidecar --registry FILE [listeners] [options]

Routes each request to the feature copy or the base version of its target service.
Every flag can also be set by the environment variable shown (for Helm values).

Registry
  --registry FILE           YAML or JSON registry file, watched for changes   DEVSTACK_REGISTRY

Listeners (at least one; port 0 picks a free port and logs it)
  --outbound-port PORT      the app's calls to other services come here      DEVSTACK_OUTBOUND_PORT
  --outbound-host ADDR      default 127.0.0.1                                DEVSTACK_OUTBOUND_HOST
  --inbound-port PORT       in front of the app                              DEVSTACK_INBOUND_PORT
  --app-port PORT           the app's port (required with --inbound-port)    DEVSTACK_APP_PORT
  --app-host ADDR           default 127.0.0.1                                DEVSTACK_APP_HOST
  --inbound-host ADDR       default 0.0.0.0                                  DEVSTACK_INBOUND_HOST
  --edge-port PORT          routes by Host for preview URLs                  DEVSTACK_EDGE_PORT
  --edge-host ADDR          default 0.0.0.0                                  DEVSTACK_EDGE_HOST
  --domain NAME             base domain, repeatable or comma-separated       DEVSTACK_DOMAIN
                            (edge: <key>.<domain> and <domain>; inbound: read keys from Host)
  --entry SERVICE           service the edge sends requests to               DEVSTACK_ENTRY
  --drop-client-keys        edge: ignore keys in client headers (Host only)  DEVSTACK_DROP_CLIENT_KEYS
  --admin-port PORT         /healthz /readyz /metrics /routes /resolve       DEVSTACK_ADMIN_PORT
  --admin-host ADDR         default 0.0.0.0                                  DEVSTACK_ADMIN_HOST
  --admin-expose-routes     /routes and /resolve to every client, not only loopback  DEVSTACK_ADMIN_EXPOSE_ROUTES

Routing
  --default-key KEY         key for calls that arrive without one (a feature copy's own key)  DEVSTACK_DEFAULT_KEY
  --strict                  503 instead of base when a key has no ready copy  DEVSTACK_STRICT
  --key-name NAME           key name in headers and baggage (default uber-ctx-key)  DEVSTACK_KEY_NAME
  --cluster-domain NAME     Kubernetes cluster domain (default cluster.local)  DEVSTACK_CLUSTER_DOMAIN
  --max-hops N              refuse with 508 after N devstack hops (default 16)  DEVSTACK_MAX_HOPS

Limits (milliseconds, bytes)
  --connect-timeout MS      default 5000                                     DEVSTACK_CONNECT_TIMEOUT
  --headers-timeout MS      upstream response headers, default 60000         DEVSTACK_HEADERS_TIMEOUT
  --idle-timeout MS         between upstream body chunks, default 60000      DEVSTACK_IDLE_TIMEOUT
  --shutdown-timeout MS     in-flight grace after SIGTERM, default 25000     DEVSTACK_SHUTDOWN_TIMEOUT
  --max-header-size BYTES   default 32768; larger requests get 431           DEVSTACK_MAX_HEADER_SIZE
  --request-headers-timeout MS  a client's request headers, default 10000 (then 408)
                                                                             DEVSTACK_REQUEST_HEADERS_TIMEOUT
  --request-body-timeout MS     no request body byte from the client, default 30000 (then 408)
                                                                             DEVSTACK_REQUEST_BODY_TIMEOUT
  --response-drain-timeout MS   the client reads none of the response, default 30000 (then cut)
                                                                             DEVSTACK_RESPONSE_DRAIN_TIMEOUT

Other
  --log-level LEVEL         debug, info, warn, error, silent (default info)  DEVSTACK_LOG_LEVEL
  -h, --help                this text
  -v, --version             the version

Signals: SIGTERM or SIGINT drain and stop; SIGHUP reads the registry file again now
(an invalid file is logged and the last good registry kept; requests in flight go on).

Tracing starts when the standard OpenTelemetry environment asks for an exporter
(OTEL_TRACES_EXPORTER, OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT).
`;

/** What the command line gives: the sidecar's options, with a registry file instead of a source. */
export interface CliConfig extends Omit<SidecarOptions, 'source' | 'logger' | 'metrics' | 'tracing' | 'edge' | 'domains' | 'strict'> {
  registry: string;
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
] as const;
const BOOLEAN_FLAGS = ['strict', 'drop-client-keys', 'admin-expose-routes'] as const;

function envName(flag: string): string {
  return `DEVSTACK_${flag.toUpperCase().replace(/-/g, '_')}`;
}

/** Flags win over environment variables; every problem is reported, one line each. */
export function parseConfig(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): ParseResult {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        ...Object.fromEntries(STRING_FLAGS.map((f) => [f, { type: 'string' as const }])),
        ...Object.fromEntries(BOOLEAN_FLAGS.map((f) => [f, { type: 'boolean' as const }])),
        domain: { type: 'string', multiple: true },
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
  if (registry === undefined) problems.push('--registry (DEVSTACK_REGISTRY): required: the registry file to route by');
  const domainList = (values['domain'] as string[] | undefined) ?? (env['DEVSTACK_DOMAIN'] ?? '').split(',');
  const domains = domainList.flatMap((d) => d.split(',')).map((d) => d.trim()).filter((d) => d.length > 0);

  const config: CliConfig = { registry: registry ?? '', domains, strict: bool('strict'), logLevel: 'info' };
  const outboundPort = port('outbound-port');
  if (outboundPort !== undefined) config.outbound = { port: outboundPort, ...opt('host', str('outbound-host')) };
  const inboundPort = port('inbound-port');
  const appPort = port('app-port');
  // A flag that was given but is invalid has its own problem line; it is not also reported missing.
  if (inboundPort !== undefined) {
    if (appPort === undefined && str('app-port') === undefined) problems.push('--app-port (DEVSTACK_APP_PORT): required with --inbound-port');
    else if (appPort === 0) problems.push('--app-port (DEVSTACK_APP_PORT): must be the app\'s real port, not 0');
    else if (appPort !== undefined) config.inbound = { port: inboundPort, appPort, ...opt('host', str('inbound-host')), ...opt('appHost', str('app-host')) };
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
  );
  try {
    createKeyCodec({ name: config.keyName, domains });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    problems.push(...error.problems);
  }
  const level = str('log-level') ?? 'info';
  if ((LOG_LEVELS as readonly string[]).includes(level)) config.logLevel = level as LogLevel;
  else problems.push(`--log-level (DEVSTACK_LOG_LEVEL): expected one of ${LOG_LEVELS.join(', ')}, got ${describeUntrusted(level)}`);

  return problems.length > 0 ? { kind: 'error', problems } : { kind: 'config', config };
}

function opt<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}
