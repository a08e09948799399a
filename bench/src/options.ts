/*
 * Parameters, from flags or the matching BENCH_* environment variables (flags win). The defaults
 * finish the whole suite in under five minutes on two cores: 7 configurations x 3 bodies x
 * 3 rounds x 3 s of load, plus 7 x 3 rounds x 2 s of wrk (64 B only), warm-up, registry scale and
 * reload timing.
 */
import { parseArgs } from 'node:util';
import { parseRuntime } from './runtime.ts';

export const CONFIG_IDS = ['direct', 'sidecar-base', 'sidecar-key', 'sidecar-pod', 'app-direct', 'http-proxy', 'nginx'] as const;
export type ConfigId = (typeof CONFIG_IDS)[number];

export interface BenchOptions {
  connections: number;
  /** Seconds of load per measured run. */
  duration: number;
  /** Seconds of unmeasured load per configuration and body before the first round (JIT warm-up). */
  warmup: number;
  pipelining: number;
  rounds: number;
  smallBody: number;
  largeBody: number;
  postBody: number;
  configs: ConfigId[];
  /** Which bodies to run: any of small, large, post. */
  scenarios: string[];
  registrySizes: number[];
  reloadIterations: number;
  /** Routing key used by the configurations that set one. */
  key: string;
  nginx: boolean;
  /** Cross-check the 64 B GET with wrk as well (skipped with the reason when wrk is missing). */
  wrk: boolean;
  /** Whole seconds per wrk run (wrk's `-d` takes no fractions). */
  wrkDuration: number;
  /** wrk's `-t`: one thread keeps the client on about one core, as autocannon is. */
  wrkThreads: number;
  /** Install nginx and wrk with bench/setup.sh when they are missing. */
  setup: boolean;
  sidecar: string | undefined;
  /** V8 and malloc tuning of the sidecar process (see runtime.ts): `image` (as its Docker image runs it), `none`, or words. */
  sidecarRuntime: string;
  /** Write a V8 CPU profile of the sidecar into this directory. */
  cpuProf: string | undefined;
  out: string | undefined;
}

export const DEFAULTS: BenchOptions = {
  connections: 50,
  duration: 3,
  warmup: 0.5,
  pipelining: 1,
  rounds: 3,
  smallBody: 64,
  largeBody: 64 * 1024,
  postBody: 1024 * 1024,
  configs: [...CONFIG_IDS],
  scenarios: ['small', 'large', 'post'],
  registrySizes: [10, 1_000, 100_000],
  reloadIterations: 5,
  key: 'feature1',
  nginx: true,
  wrk: true,
  wrkDuration: 2,
  wrkThreads: 1,
  setup: true,
  sidecar: undefined,
  sidecarRuntime: 'image',
  cpuProf: undefined,
  out: undefined,
};

export const HELP = `Usage: npm run bench -- [options]       (each option also reads BENCH_<NAME>, e.g. BENCH_DURATION=5)

  --connections N        concurrent connections per run (default ${DEFAULTS.connections})
  --duration S           seconds of load per measured run (default ${DEFAULTS.duration})
  --warmup S             unmeasured seconds per configuration and body first (default ${DEFAULTS.warmup})
  --pipelining N         requests in flight per connection (default ${DEFAULTS.pipelining})
  --rounds N             interleaved rounds, at least 3; medians and spread across them (default ${DEFAULTS.rounds})
  --small-body BYTES     small GET response body (default ${DEFAULTS.smallBody})
  --large-body BYTES     large GET response body (default ${DEFAULTS.largeBody})
  --post-body BYTES      streamed POST request body (default ${DEFAULTS.postBody})
  --configs LIST         comma list of ${CONFIG_IDS.join(', ')} (default all)
  --scenarios LIST       comma list of small, large, post (default all)
  --registry-sizes LIST  (service, key) entries for the registry scale runs (default ${DEFAULTS.registrySizes.join(',')}); 0 skips them
  --reload-iterations N  registry file changes timed through the sidecar (default ${DEFAULTS.reloadIterations})
  --no-nginx             skip the nginx peer
  --wrk, --no-wrk        also load the 64 B GET with wrk, right after each autocannon run of the same
                         configuration, as a cross-check (default on; skipped with the reason when
                         wrk is missing and bench/setup.sh cannot install it)
  --wrk-duration S       whole seconds per wrk run (default ${DEFAULTS.wrkDuration})
  --wrk-threads N        wrk threads (default ${DEFAULTS.wrkThreads})
  --no-setup             do not run bench/setup.sh when nginx or wrk is missing
  --sidecar PATH         sidecar CLI (default packages/sidecar/dist/cli.js)
  --sidecar-runtime SPEC the sidecar's V8/malloc tuning: image (default: the ENV and ENTRYPOINT
                         node flags of docker/sidecar.Dockerfile), none (Node's defaults), or words
                         such as 'image MALLOC_ARENA_MAX=1 --optimize-for-size' (image: the image's
                         settings, NAME=value sets one, --flag goes on node's command line)
  --cpu-prof DIR         run the sidecar with --cpu-prof, profiles written into DIR
  --out DIR              results directory (default bench/results)
  --help

HTTP/2 and gRPC (h2c through the sidecar, direct and nginx grpc_pass, loaded by h2load) are a
separate run: npm run bench:h2 -- --help (in bench/: npm run h2 -- --help).
`;

export function int(name: string, raw: string, min: number): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name}: expected an integer >= ${min}, got ${JSON.stringify(raw)}`);
  return n;
}

export function seconds(name: string, raw: string, min: number): number {
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min) throw new Error(`--${name}: expected seconds >= ${min}, got ${JSON.stringify(raw)}`);
  return n;
}

function list(raw: string): string[] {
  return raw.split(',').map((s) => s.trim()).filter((s) => s !== '');
}

/** A comma list of at least one id, every one of them among `allowed`. */
export function oneOf<T extends string>(name: string, raw: string, allowed: readonly T[]): T[] {
  const ids = list(raw);
  const bad = ids.filter((id) => !(allowed as readonly string[]).includes(id));
  if (bad.length > 0 || ids.length === 0) throw new Error(`--${name}: unknown ${bad.join(', ') || '(empty)'}; choose from ${allowed.join(', ')}`);
  return ids as T[];
}

/** A routing key, held to the DNS-1123 label form routing keys take. */
export function routingKey(raw: string): string {
  if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(raw)) throw new Error(`--key: ${JSON.stringify(raw)} is not a DNS-1123 label`);
  return raw;
}

/** A --sidecar-runtime spec, refused now when malformed rather than once targets are up; the image it may name is read when the sidecar starts. */
export function runtimeSpec(raw: string): string {
  parseRuntime(raw, () => ({ env: {}, nodeArgs: [] }));
  return raw;
}

/** One command's flags and environment variables: `<prefix><NAME>`, dashes as underscores; a flag wins over its variable. */
export interface OptionSource<V extends string, S extends string> {
  help: boolean;
  /** Calls `apply` with the option's value unless it is unset or empty. */
  value(name: V, apply: (raw: string) => void): void;
  /** The switch given on the command line. */
  flag(name: S): boolean;
  /** The switch given on the command line or by its variable set to 1. */
  on(name: S): boolean;
}

export function optionSource<V extends string, S extends string>(argv: string[], env: NodeJS.ProcessEnv, prefix: string, values: readonly V[], switches: readonly S[]): OptionSource<V, S> {
  const { values: parsed } = parseArgs({
    args: argv,
    strict: true,
    options: {
      ...Object.fromEntries(values.map((n) => [n, { type: 'string' as const }])),
      ...Object.fromEntries([...switches, 'help'].map((n) => [n, { type: 'boolean' as const }])),
    },
  });
  const given = parsed as Record<string, string | boolean | undefined>;
  const variable = (name: string) => env[`${prefix}${name.toUpperCase().replace(/-/g, '_')}`];
  return {
    help: given['help'] === true,
    value: (name, apply) => {
      const flag = given[name];
      const raw = typeof flag === 'string' ? flag : variable(name);
      if (raw !== undefined && raw !== '') apply(raw);
    },
    flag: (name) => given[name] === true,
    on: (name) => given[name] === true || variable(name) === '1',
  };
}

export function parseOptions(argv: string[], env: NodeJS.ProcessEnv = process.env): BenchOptions | 'help' {
  const names = ['connections', 'duration', 'warmup', 'pipelining', 'rounds', 'small-body', 'large-body', 'post-body', 'configs', 'scenarios', 'registry-sizes', 'reload-iterations', 'wrk-duration', 'wrk-threads', 'key', 'sidecar', 'sidecar-runtime', 'cpu-prof', 'out'] as const;
  const given = optionSource(argv, env, 'BENCH_', names, ['no-nginx', 'wrk', 'no-wrk', 'no-setup'] as const);
  if (given.help) return 'help';
  const o: BenchOptions = { ...DEFAULTS, configs: [...DEFAULTS.configs], scenarios: [...DEFAULTS.scenarios], registrySizes: [...DEFAULTS.registrySizes] };
  const v = given.value;
  v('connections', (r) => (o.connections = int('connections', r, 1)));
  v('duration', (r) => (o.duration = seconds('duration', r, 0.2)));
  v('warmup', (r) => (o.warmup = seconds('warmup', r, 0)));
  v('pipelining', (r) => (o.pipelining = int('pipelining', r, 1)));
  v('rounds', (r) => (o.rounds = int('rounds', r, 3)));
  v('small-body', (r) => (o.smallBody = int('small-body', r, 0)));
  v('large-body', (r) => (o.largeBody = int('large-body', r, 0)));
  v('post-body', (r) => (o.postBody = int('post-body', r, 1)));
  v('reload-iterations', (r) => (o.reloadIterations = int('reload-iterations', r, 0)));
  v('wrk-duration', (r) => (o.wrkDuration = int('wrk-duration', r, 1)));
  v('wrk-threads', (r) => (o.wrkThreads = int('wrk-threads', r, 1)));
  v('key', (r) => (o.key = routingKey(r)));
  v('configs', (r) => (o.configs = oneOf('configs', r, CONFIG_IDS)));
  v('scenarios', (r) => (o.scenarios = oneOf('scenarios', r, DEFAULTS.scenarios)));
  v('registry-sizes', (r) => (o.registrySizes = r === '0' ? [] : list(r).map((s) => int('registry-sizes', s, 1))));
  v('sidecar', (r) => (o.sidecar = r));
  v('sidecar-runtime', (r) => (o.sidecarRuntime = runtimeSpec(r)));
  v('cpu-prof', (r) => (o.cpuProf = r));
  v('out', (r) => (o.out = r));
  if (given.on('no-nginx')) o.nginx = false;
  if (given.on('no-setup')) o.setup = false;
  if (given.flag('wrk') && given.flag('no-wrk')) throw new Error('--wrk and --no-wrk together');
  // A flag wins over the environment either way.
  if (given.flag('no-wrk') || (!given.flag('wrk') && given.on('no-wrk'))) o.wrk = false;
  return o;
}
