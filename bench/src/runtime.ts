/*
 * How the sidecar's Node runtime is tuned (V8 heap flags, glibc malloc settings), as a spec of
 * words: `NAME=value` sets an environment variable (NODE_OPTIONS, MALLOC_ARENA_MAX, ...), any
 * word starting with `--` is a flag on node's own command line (for V8 flags that NODE_OPTIONS
 * refuses), and `image` stands for what docker/sidecar.Dockerfile sets, read from its ENV lines
 * and the node flags of its ENTRYPOINT: by default the bench measures the sidecar the way the image
 * runs it. `none` is Node's defaults.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Variables that change how the process runs, not what it does (DEVSTACK_* would change the sidecar). */
const RUNTIME_VAR = /^(NODE_OPTIONS|MALLOC_[A-Z_]+|UV_THREADPOOL_SIZE)$/;

export interface Runtime {
  /** The spec as given (`image`, `none`, or words). */
  spec: string;
  /** Environment set for the sidecar; runtime variables the harness itself has are not passed on. */
  env: Record<string, string>;
  nodeArgs: string[];
}

/** Splits on blanks outside double quotes and drops the quotes (enough for Dockerfile ENV values). */
export function words(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/(?:[^\s"]+|"[^"]*")+/g)) out.push(m[0].replace(/"([^"]*)"/g, '$1'));
  return out;
}

/** The variables a Dockerfile's ENV instructions set (`ENV A=1 B="x y"`, continuation lines joined). */
export function dockerfileEnv(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  const lines = text.replace(/\\\r?\n/g, ' ').split(/\r?\n/);
  for (const line of lines) {
    const m = /^\s*ENV\s+(.*)$/i.exec(line);
    if (!m) continue;
    const parts = words(m[1]!);
    if (parts.length >= 1 && !parts[0]!.includes('=')) {
      // The legacy form: `ENV NAME value with spaces`.
      env[parts[0]!] = parts.slice(1).join(' ');
      continue;
    }
    for (const p of parts) {
      const eq = p.indexOf('=');
      if (eq > 0) env[p.slice(0, eq)] = p.slice(eq + 1);
    }
  }
  return env;
}

export const SIDECAR_DOCKERFILE = fileURLToPath(new URL('../../docker/sidecar.Dockerfile', import.meta.url));

/** The runtime variables docker/sidecar.Dockerfile sets. */
export function imageRuntimeEnv(dockerfile = readFileSync(SIDECAR_DOCKERFILE, 'utf8')): Record<string, string> {
  return Object.fromEntries(Object.entries(dockerfileEnv(dockerfile)).filter(([name]) => RUNTIME_VAR.test(name)));
}

/** The image's exec-form ENTRYPOINT (`["node", "--flag", "packages/sidecar/dist/cli.js"]`), if it has one. */
export function entrypoint(dockerfile = readFileSync(SIDECAR_DOCKERFILE, 'utf8')): string[] | undefined {
  const text = dockerfile.replace(/\\\r?\n/g, ' ');
  const m = /^\s*ENTRYPOINT\s+(\[.*\])\s*$/im.exec(text);
  if (!m) return undefined;
  let argv: unknown;
  try {
    argv = JSON.parse(m[1]!);
  } catch {
    return undefined;
  }
  return Array.isArray(argv) && argv.every((a) => typeof a === 'string') ? argv : undefined;
}

/**
 * The flags the image gives node itself, before the script: V8 flags that NODE_OPTIONS refuses
 * live in the exec-form ENTRYPOINT.
 */
export function entrypointNodeArgs(dockerfile: string): string[] {
  const argv = entrypoint(dockerfile);
  if (argv?.[0] !== 'node') return [];
  const flags: string[] = [];
  for (const a of argv.slice(1)) {
    if (!a.startsWith('--')) break;
    flags.push(a);
  }
  return flags;
}

/** How the image runs node: its runtime variables and the flags on node's command line. */
export function imageRuntime(dockerfile = readFileSync(SIDECAR_DOCKERFILE, 'utf8')): { env: Record<string, string>; nodeArgs: string[] } {
  return { env: imageRuntimeEnv(dockerfile), nodeArgs: entrypointNodeArgs(dockerfile) };
}

export function parseRuntime(spec: string, image: () => { env: Record<string, string>; nodeArgs: string[] } = imageRuntime): Runtime {
  const trimmed = spec.trim();
  if (trimmed === 'none') return { spec: trimmed, env: {}, nodeArgs: [] };
  const env: Record<string, string> = {};
  const nodeArgs: string[] = [];
  for (const w of words(trimmed)) {
    const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(w);
    if (w === 'image') {
      const i = image();
      Object.assign(env, i.env);
      nodeArgs.push(...i.nodeArgs);
    }
    else if (m) env[m[1]!] = m[2]!;
    else if (w.startsWith('--')) nodeArgs.push(w);
    else throw new Error(`runtime spec: ${JSON.stringify(w)} is neither image, NAME=value nor a --flag (in ${JSON.stringify(spec)})`);
  }
  return { spec: trimmed, env, nodeArgs };
}

/** The child's whole environment: the harness's, minus its own runtime tuning, plus the spec's. */
export function runtimeEnv(runtime: Runtime, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(base)) if (!RUNTIME_VAR.test(name)) env[name] = value;
  return { ...env, ...runtime.env };
}

/** One line for reports: `NODE_OPTIONS="..." MALLOC_ARENA_MAX=2 --flag`, or `Node defaults`. */
export function describeRuntime(runtime: Runtime): string {
  const parts = [
    ...Object.entries(runtime.env).map(([k, v]) => (/\s/.test(v) ? `${k}="${v}"` : `${k}=${v}`)),
    ...runtime.nodeArgs,
  ];
  return parts.length === 0 ? 'Node defaults' : parts.join(' ');
}
