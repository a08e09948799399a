/** Parameters of `npm run footprint`, from flags or BENCH_FOOTPRINT_* variables (flags win). */
import { parseArgs } from 'node:util';
import { parseRuntime } from './runtime.ts';

export interface Variant {
  name: string;
  /** A runtime spec (runtime.ts): `image`, `none`, or words. */
  spec: string;
}

export interface FootprintOptions {
  variants: Variant[];
  rounds: number;
  /** Seconds of measured load per body. */
  duration: number;
  /** Unmeasured seconds per body first (its memory counts: a limit must hold it too). */
  warmup: number;
  /** Seconds between ready and the idle reading. */
  settle: number;
  connections: number;
  scenarios: string[];
  sidecar: string | undefined;
  out: string | undefined;
  /**
   * `HARNESS/SIDECAR` CPU lists for taskset: the load generator and upstream on the first, every
   * sidecar on the second. Unpinned, the three processes share two cores as the scheduler likes
   * and the paired CPU ratio of two identical settings moves by a third from round to round.
   */
  pin: string | undefined;
  /**
   * Runs every sidecar with `--trace-gc-nvp` and reports what its GC cost per request: main-thread
   * pauses plus the CPU of V8's worker threads, and that against the baseline's CPU per request.
   */
  gc: boolean;
}

export const FOOTPRINT_DEFAULTS: FootprintOptions = {
  variants: [
    { name: 'node-defaults', spec: 'none' },
    { name: 'image', spec: 'image' },
  ],
  rounds: 5,
  duration: 3,
  warmup: 0.5,
  settle: 1,
  connections: 50,
  scenarios: ['small', 'large', 'post'],
  sidecar: undefined,
  out: undefined,
  pin: undefined,
  gc: false,
};

export const FOOTPRINT_HELP = `Usage: npm run footprint -- [options]     (each option also reads BENCH_FOOTPRINT_<NAME>)

Compares runtime tunings of the sidecar on memory and cost: every round starts a fresh sidecar per
variant (order rotated each round), reads its idle RSS, loads its outbound listener with each body
and reads its peak RSS, req/s and CPU µs per request. Medians and spread over the rounds.

  --variant NAME:SPEC    repeatable; SPEC is image (docker/sidecar.Dockerfile's ENV and the node flags
                         of its ENTRYPOINT), none (Node's defaults) or words: NAME=value sets a
                         variable, --flag goes on node's command line, image the image's settings:
                         e.g. 'lean:image --optimize-for-size'
                         (default: node-defaults:none and image:image; the first is the baseline)
  --rounds N             at least 2 (default ${FOOTPRINT_DEFAULTS.rounds})
  --duration S           measured seconds per body (default ${FOOTPRINT_DEFAULTS.duration})
  --warmup S             unmeasured seconds per body first (default ${FOOTPRINT_DEFAULTS.warmup})
  --settle S             seconds after ready before the idle reading (default ${FOOTPRINT_DEFAULTS.settle})
  --connections N        (default ${FOOTPRINT_DEFAULTS.connections})
  --scenarios LIST       comma list of small, large, post (default all)
  --sidecar PATH         sidecar CLI (default packages/sidecar/dist/cli.js)
  --out DIR              results directory (default bench/results)
  --pin HARNESS/SIDECAR  CPU lists for taskset, e.g. 0/1: this process (load generator) and the
                         upstream on the first, every sidecar (all its threads) on the second
  --gc                   run each sidecar with --trace-gc-nvp and report its GC per request (main-
                         thread pauses + V8 worker threads' CPU) and the extra over the baseline as
                         a share of the baseline's CPU: the cost of a heap setting, with less noise
                         than whole-process CPU
  --help
`;

function number(name: string, raw: string, min: number, integer: boolean): number {
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min || (integer && !Number.isInteger(n))) throw new Error(`--${name}: expected ${integer ? 'an integer' : 'a number'} >= ${min}, got ${JSON.stringify(raw)}`);
  return n;
}

export function parseVariant(raw: string): Variant {
  const colon = raw.indexOf(':');
  const name = colon > 0 ? raw.slice(0, colon).trim() : '';
  if (!/^[A-Za-z0-9][\w.-]*$/.test(name)) throw new Error(`--variant: expected NAME:SPEC, got ${JSON.stringify(raw)}`);
  const spec = raw.slice(colon + 1).trim();
  parseRuntime(spec, () => ({ env: {}, nodeArgs: [] }));
  return { name, spec };
}

export function parseFootprintOptions(argv: string[], env: NodeJS.ProcessEnv = process.env): FootprintOptions | 'help' {
  const names = ['rounds', 'duration', 'warmup', 'settle', 'connections', 'scenarios', 'sidecar', 'out', 'pin'] as const;
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      ...Object.fromEntries(names.map((n) => [n, { type: 'string' as const }])),
      variant: { type: 'string', multiple: true },
      gc: { type: 'boolean' },
      help: { type: 'boolean' },
    },
  });
  const v = values as Record<string, string | string[] | boolean | undefined>;
  if (v['help']) return 'help';
  const get = (name: string): string | undefined => {
    const flag = v[name];
    const raw = typeof flag === 'string' ? flag : env[`BENCH_FOOTPRINT_${name.toUpperCase()}`];
    return raw === '' ? undefined : raw;
  };
  const o: FootprintOptions = { ...FOOTPRINT_DEFAULTS, variants: [...FOOTPRINT_DEFAULTS.variants], scenarios: [...FOOTPRINT_DEFAULTS.scenarios] };
  const variants = (v['variant'] as string[] | undefined) ?? (env['BENCH_FOOTPRINT_VARIANTS'] ? env['BENCH_FOOTPRINT_VARIANTS'].split(';') : undefined);
  if (variants) {
    o.variants = variants.map(parseVariant);
    if (o.variants.length < 2) throw new Error('--variant: give at least two, to compare');
    const names = o.variants.map((x) => x.name);
    if (new Set(names).size !== names.length) throw new Error(`--variant: names must differ (${names.join(', ')})`);
  }
  const raw = (name: (typeof names)[number], apply: (r: string) => void) => {
    const r = get(name);
    if (r !== undefined) apply(r);
  };
  raw('rounds', (r) => (o.rounds = number('rounds', r, 2, true)));
  raw('duration', (r) => (o.duration = number('duration', r, 0.2, false)));
  raw('warmup', (r) => (o.warmup = number('warmup', r, 0, false)));
  raw('settle', (r) => (o.settle = number('settle', r, 0, false)));
  raw('connections', (r) => (o.connections = number('connections', r, 1, true)));
  raw('scenarios', (r) => {
    const ids = r.split(',').map((s) => s.trim()).filter((s) => s !== '');
    const bad = ids.filter((id) => !FOOTPRINT_DEFAULTS.scenarios.includes(id));
    if (bad.length > 0 || ids.length === 0) throw new Error(`--scenarios: unknown ${bad.join(', ') || '(empty)'}; choose from small, large, post`);
    o.scenarios = ids;
  });
  if (v['gc'] === true) o.gc = true;
  else {
    const gc = env['BENCH_FOOTPRINT_GC'];
    if (gc !== undefined && gc !== '') {
      if (!['0', '1', 'true', 'false'].includes(gc)) throw new Error(`BENCH_FOOTPRINT_GC: expected 1 or 0, got ${JSON.stringify(gc)}`);
      o.gc = gc === '1' || gc === 'true';
    }
  }
  raw('sidecar', (r) => (o.sidecar = r));
  raw('out', (r) => (o.out = r));
  raw('pin', (r) => {
    if (!/^[0-9][0-9,-]*\/[0-9][0-9,-]*$/.test(r)) throw new Error(`--pin: expected HARNESS/SIDECAR CPU lists such as 0/1, got ${JSON.stringify(r)}`);
    o.pin = r;
  });
  return o;
}
