import { parseArgs } from 'node:util';
import { describeUntrusted, isValidKey } from '@devstack/core';
import { DEFAULT_LIMITS, type RelayLimits } from './relay.js';

export const HELP = `Usage: devstack-relay [options]

Watches the Kubernetes API once (Services and EndpointSlices labelled devstack.io/service) for the
namespaces it serves, and streams each namespace's routing snapshots to sidecars and SDKs
(--registry http://RELAY:PORT) over HTTP/1.1 as newline-delimited JSON.

Every flag has an environment variable (DEVSTACK_ and the flag's name in capitals); the flag wins.

Source
  --namespace NS              a namespace to serve, repeatable or comma-separated
  --all-namespaces            serve every namespace (needs a ClusterRole); each is watched from
                              the first request for it, at most --max-namespaces
  --kubeconfig FILE           else KUBECONFIG, else the in-cluster service account
  --targets service|endpoints Service DNS names (default) or pod addresses
  --cluster-domain DOMAIN     default cluster.local
  --watch-idle-timeout MS     a watch silent this long is restarted (default 90000)

Listeners
  --port PORT                 the stream (default 7400)
  --host ADDRESS              default 0.0.0.0
  --admin-port PORT           /healthz, /readyz (200 after the first sync), /status, /metrics (default 7401)
  --admin-host ADDRESS        default 0.0.0.0
  --tls-cert FILE             serve the stream over TLS (clients: --registry https://...), with
  --tls-key FILE              this certificate chain and key (PEM), read at start

Limits
  --heartbeat-interval MS     a heartbeat on every quiet stream this often (default ${DEFAULT_LIMITS.heartbeatIntervalMs})
  --max-stream-age MS         a stream is ended after this long, less up to 20% at random (default ${DEFAULT_LIMITS.maxStreamAgeMs})
  --max-connections N         open connections on the stream port (default ${DEFAULT_LIMITS.maxConnections})
  --max-header-size BYTES     request line and headers (default ${DEFAULT_LIMITS.maxHeaderSize}; more: 431)
  --headers-timeout MS        a request not received by then is closed (default ${DEFAULT_LIMITS.headersTimeoutMs})
  --stall-timeout MS          a subscriber that reads nothing this long is ended (default ${DEFAULT_LIMITS.stallTimeoutMs})
  --history N                 versions kept per namespace to resume from with a change (default ${DEFAULT_LIMITS.history})
  --max-namespaces N          with --all-namespaces, namespaces watched at most (default ${DEFAULT_LIMITS.maxNamespaces})
  --max-admin-connections N   open connections on the admin port (default ${DEFAULT_LIMITS.maxAdminConnections})

  --log-level debug|info|warn|error   default info
  --help, --version
`;

export interface RelayConfig extends RelayLimits {
  namespaces: string[] | undefined;
  kubeconfig: string | undefined;
  targets: 'service' | 'endpoints' | undefined;
  clusterDomain: string | undefined;
  watchIdleTimeoutMs: number | undefined;
  port: number;
  host: string;
  adminPort: number;
  adminHost: string;
  tlsCert: string | undefined;
  tlsKey: string | undefined;
  logLevel: 'debug' | 'info' | 'warn' | 'error';
}

export type Parsed = { kind: 'help' } | { kind: 'version' } | { kind: 'error'; problems: string[] } | { kind: 'config'; config: RelayConfig };

const envName = (flag: string) => `DEVSTACK_${flag.toUpperCase().replace(/-/g, '_')}`;

const INTS: Array<[flag: string, key: keyof RelayLimits | 'port' | 'adminPort' | 'watchIdleTimeoutMs', min: number, max: number]> = [
  ['port', 'port', 0, 65535],
  ['admin-port', 'adminPort', 0, 65535],
  ['heartbeat-interval', 'heartbeatIntervalMs', 10, 3_600_000],
  ['max-stream-age', 'maxStreamAgeMs', 1000, 86_400_000],
  ['max-connections', 'maxConnections', 1, 1_000_000],
  ['max-header-size', 'maxHeaderSize', 1024, 1024 * 1024],
  ['headers-timeout', 'headersTimeoutMs', 100, 600_000],
  ['stall-timeout', 'stallTimeoutMs', 100, 3_600_000],
  ['history', 'history', 1, 100_000],
  ['max-namespaces', 'maxNamespaces', 1, 100_000],
  ['max-admin-connections', 'maxAdminConnections', 1, 100_000],
  ['watch-idle-timeout', 'watchIdleTimeoutMs', 1000, 3_600_000],
];

export function parseConfig(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): Parsed {
  let values: Record<string, string | boolean | string[] | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean' },
        namespace: { type: 'string', multiple: true },
        'all-namespaces': { type: 'boolean' },
        kubeconfig: { type: 'string' },
        targets: { type: 'string' },
        'cluster-domain': { type: 'string' },
        host: { type: 'string' },
        'admin-host': { type: 'string' },
        'tls-cert': { type: 'string' },
        'tls-key': { type: 'string' },
        'log-level': { type: 'string' },
        ...Object.fromEntries(INTS.map(([flag]) => [flag, { type: 'string' as const }])),
      },
    }));
  } catch (error) {
    // parseArgs quotes what it refused; the message says which flag, not the value given.
    return { kind: 'error', problems: [(error as Error).message.replace(/\. To specify a positional argument.*$/s, '')] };
  }
  if (values['help'] === true) return { kind: 'help' };
  if (values['version'] === true) return { kind: 'version' };
  const problems: string[] = [];
  const str = (flag: string): string | undefined => (values[flag] as string | undefined) ?? (env[envName(flag)] === '' ? undefined : env[envName(flag)]);
  const bool = (flag: string): boolean => {
    if (values[flag] === true) return true;
    const e = env[envName(flag)];
    if (e === undefined || e === '') return false;
    if (/^(1|true|yes|on)$/i.test(e)) return true;
    if (!/^(0|false|no|off)$/i.test(e)) problems.push(`${envName(flag)}: expected true or false, got ${describeUntrusted(e)}`);
    return false;
  };
  const out: Record<string, unknown> = { ...DEFAULT_LIMITS, port: 7400, adminPort: 7401 };
  for (const [flag, key, min, max] of INTS) {
    const raw = str(flag);
    if (raw === undefined) continue;
    if (!/^[0-9]+$/.test(raw) || Number(raw) < min || Number(raw) > max) problems.push(`--${flag} (${envName(flag)}): expected a whole number from ${min} to ${max}, got ${describeUntrusted(raw)}`);
    else out[key] = Number(raw);
  }
  const listed = ((values['namespace'] as string[] | undefined) ?? (env['DEVSTACK_NAMESPACE'] ?? '').split(',')).flatMap((v) => v.split(',')).map((v) => v.trim()).filter((v) => v !== '');
  const all = bool('all-namespaces');
  for (const ns of listed) if (!isValidKey(ns)) problems.push(`--namespace (DEVSTACK_NAMESPACE): ${describeUntrusted(ns)} is not a namespace name (a DNS-1123 label)`);
  if (listed.length > 0 && all) problems.push('--namespace and --all-namespaces: give one of them');
  if (listed.length === 0 && !all) problems.push('--namespace NS (repeatable) or --all-namespaces: which namespaces to serve');
  const targets = str('targets');
  if (targets !== undefined && targets !== 'service' && targets !== 'endpoints') problems.push(`--targets (DEVSTACK_TARGETS): expected service or endpoints, got ${describeUntrusted(targets)}`);
  if ((str('tls-cert') === undefined) !== (str('tls-key') === undefined)) problems.push('--tls-cert and --tls-key (DEVSTACK_TLS_CERT, DEVSTACK_TLS_KEY): give both or neither');
  const level = str('log-level') ?? 'info';
  if (!['debug', 'info', 'warn', 'error'].includes(level)) problems.push(`--log-level (DEVSTACK_LOG_LEVEL): expected debug, info, warn or error, got ${describeUntrusted(level)}`);
  if (problems.length > 0) return { kind: 'error', problems };
  return {
    kind: 'config',
    config: {
      ...(out as unknown as RelayLimits & { port: number; adminPort: number; watchIdleTimeoutMs: number | undefined }),
      namespaces: all ? undefined : [...new Set(listed)],
      kubeconfig: str('kubeconfig'),
      targets: targets as 'service' | 'endpoints' | undefined,
      clusterDomain: str('cluster-domain'),
      host: str('host') ?? '0.0.0.0',
      adminHost: str('admin-host') ?? '0.0.0.0',
      tlsCert: str('tls-cert'),
      tlsKey: str('tls-key'),
      logLevel: level as RelayConfig['logLevel'],
    },
  };
}
