/*
 * Parameters of `npm run bench:h2` (in bench/: `npm run h2`), from flags or BENCH_H2_* variables
 * (flags win). The defaults take about a minute on two cores: 3 paths x 2 calls x 3 rounds x 3 s,
 * plus warm-up and the checks.
 */
import { int, oneOf, optionSource, routingKey, runtimeSpec, seconds } from './options.ts';

export const H2_PATHS = ['direct', 'sidecar', 'nginx'] as const;
export type H2PathId = (typeof H2_PATHS)[number];
export const H2_SCENARIOS = ['grpc', 'get'] as const;
export type H2ScenarioId = (typeof H2_SCENARIOS)[number];

export interface H2Options {
  /** h2load's `-c`: HTTP/2 connections. */
  connections: number;
  /** h2load's `-m`: concurrent streams per connection. */
  streams: number;
  /** h2load's `-t`. */
  threads: number;
  /** Seconds of load per measured run. */
  duration: number;
  /** Seconds of unmeasured load per path and call before the first round. */
  warmup: number;
  rounds: number;
  /** Response body of the GET, bytes. */
  getBody: number;
  paths: H2PathId[];
  scenarios: H2ScenarioId[];
  /** Routing key every call carries, so the sidecar and nginx both route to the feature lane. */
  key: string;
  nginx: boolean;
  /** Install h2load and nginx with bench/setup.sh when they are missing. */
  setup: boolean;
  sidecar: string | undefined;
  sidecarRuntime: string;
  out: string | undefined;
}

export const H2_DEFAULTS: H2Options = {
  connections: 10,
  streams: 5,
  threads: 1,
  duration: 3,
  warmup: 0.5,
  rounds: 3,
  getBody: 64,
  paths: [...H2_PATHS],
  scenarios: [...H2_SCENARIOS],
  key: 'feature1',
  nginx: true,
  setup: true,
  sidecar: undefined,
  sidecarRuntime: 'image',
  out: undefined,
};

export const H2_HELP = `Usage: npm run bench:h2 -- [options]      (in bench/: npm run h2; each option also reads BENCH_H2_<NAME>)

HTTP/2 and gRPC through the sidecar, against a direct connection and against nginx, in one run.
Every call is cleartext HTTP/2 with prior knowledge (h2c), loaded by h2load (Debian
nghttp2-client), with :authority upstream and uber-ctx-key set, to an h2c upstream stub (node:http2)
that answers in the feature lane:

  grpc   unary gRPC: POST /devstack.bench.Echo/Unary, content-type application/grpc, te: trailers,
         one 16 B length-prefixed message; answer a 64 B message and trailers grpc-status 0
  get    GET /bytes/<n>, an n-byte body (--get-body, default ${H2_DEFAULTS.getBody})

Paths:
  direct   h2load -> upstream stub (the floor)
  sidecar  h2load -> sidecar outbound (h2c, routed by :authority) -> upstream, registered with
           protocol: h2c in the sidecar's registry file
  nginx    h2load -> nginx (listen ... http2, map on the key, grpc_pass with upstream keepalive) -> upstream

h2load checks HTTP statuses only; a gRPC failure is an HTTP 200 with grpc-status in the trailers.
So every run is preceded and followed by one call through the same path with node:http2 that
checks status, lane, body and grpc-status, and each path gets one @grpc/grpc-js call before the
first run and after the last. A path that cannot start or fails its check is reported as
"failed: <reason>"; the others still run.

  --connections N        h2load -c: HTTP/2 connections (default ${H2_DEFAULTS.connections})
  --streams N            h2load -m: concurrent streams per connection (default ${H2_DEFAULTS.streams})
  --threads N            h2load -t (default ${H2_DEFAULTS.threads})
  --duration S           seconds of load per measured run (default ${H2_DEFAULTS.duration})
  --warmup S             unmeasured seconds per path and call first (default ${H2_DEFAULTS.warmup})
  --rounds N             interleaved rounds, at least 3; medians and spread across them (default ${H2_DEFAULTS.rounds})
  --get-body BYTES       GET response body (default ${H2_DEFAULTS.getBody})
  --paths LIST           comma list of ${H2_PATHS.join(', ')} (default all)
  --scenarios LIST       comma list of ${H2_SCENARIOS.join(', ')} (default all)
  --key KEY              routing key sent with every call (default ${H2_DEFAULTS.key})
  --no-nginx             skip the nginx path
  --no-setup             do not run bench/setup.sh when h2load or nginx is missing
  --sidecar PATH         sidecar CLI (default packages/sidecar/dist/cli.js)
  --sidecar-runtime SPEC the sidecar's V8/malloc tuning, as for npm run bench (default image)
  --out DIR              results directory (default bench/results)
  --help
`;

export function parseH2Options(argv: string[], env: NodeJS.ProcessEnv = process.env): H2Options | 'help' {
  const names = ['connections', 'streams', 'threads', 'duration', 'warmup', 'rounds', 'get-body', 'paths', 'scenarios', 'key', 'sidecar', 'sidecar-runtime', 'out'] as const;
  const given = optionSource(argv, env, 'BENCH_H2_', names, ['no-nginx', 'no-setup'] as const);
  if (given.help) return 'help';
  const o: H2Options = { ...H2_DEFAULTS, paths: [...H2_DEFAULTS.paths], scenarios: [...H2_DEFAULTS.scenarios] };
  const v = given.value;
  v('connections', (r) => (o.connections = int('connections', r, 1)));
  v('streams', (r) => (o.streams = int('streams', r, 1)));
  v('threads', (r) => (o.threads = int('threads', r, 1)));
  v('duration', (r) => (o.duration = seconds('duration', r, 0.2)));
  v('warmup', (r) => (o.warmup = seconds('warmup', r, 0)));
  v('rounds', (r) => (o.rounds = int('rounds', r, 3)));
  v('get-body', (r) => (o.getBody = int('get-body', r, 0)));
  v('paths', (r) => (o.paths = oneOf('paths', r, H2_PATHS)));
  v('scenarios', (r) => (o.scenarios = oneOf('scenarios', r, H2_SCENARIOS)));
  v('key', (r) => (o.key = routingKey(r)));
  v('sidecar', (r) => (o.sidecar = r));
  v('sidecar-runtime', (r) => (o.sidecarRuntime = runtimeSpec(r)));
  v('out', (r) => (o.out = r));
  // h2load refuses more threads than connections.
  if (o.threads > o.connections) throw new Error(`--threads ${o.threads} is more than --connections ${o.connections}`);
  if (given.on('no-nginx')) o.nginx = false;
  if (given.on('no-setup')) o.setup = false;
  return o;
}
