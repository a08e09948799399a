/*
 * The devstack sidecar under test, started through its CLI exactly as a pod would run it:
 *   node packages/sidecar/dist/cli.js --registry FILE --outbound-port 0 --inbound-port 0
 *        --app-port N --admin-port 0 --log-level info
 * It logs one JSON line per listener (`{"msg":"listening","listener":"outbound","port":...}`);
 * the harness takes the ports from those lines and waits for the admin `/readyz` to answer 200.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stopChild, tail, track, type Target } from './processes.ts';
import { runtimeEnv, type Runtime } from './runtime.ts';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export function sidecarCli(): string {
  return process.env['BENCH_SIDECAR'] ?? join(REPO_ROOT, 'packages/sidecar/dist/cli.js');
}

/** Why the sidecar cannot be measured, or undefined when it can. */
export function sidecarMissing(cli = sidecarCli()): string | undefined {
  if (existsSync(cli)) return undefined;
  return `sidecar not built: ${cli} is missing (run \`npx tsc --build\` once packages/sidecar exists)`;
}

export interface RegistryLayout {
  base: number;
  features: Record<string, number>;
}

/** The registry file the sidecar reads, in the format of DESIGN.md. */
export function registryYaml(layout: RegistryLayout): string {
  const features = Object.entries(layout.features)
    .map(([key, port]) => `      ${key}: http://127.0.0.1:${port}`)
    .join('\n');
  return `services:\n  upstream:\n    base: http://127.0.0.1:${layout.base}\n    features:\n${features}\n`;
}

export function writeRegistry(path: string, layout: RegistryLayout): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, registryYaml(layout));
}

export interface SidecarOptions {
  cli: string;
  registry: string;
  appPort: number;
  /** Directory for a V8 CPU profile (`--cpu-prof`), written when the sidecar exits. */
  cpuProfDir?: string;
  /** V8 and malloc tuning for the sidecar alone; without it the sidecar inherits the harness's environment. */
  runtime?: Runtime;
  extraArgs?: string[];
  timeoutMs?: number;
  /** Every line the sidecar writes to stdout (its JSON log, and V8's traces when asked for). */
  onLine?: (line: string) => void;
}

export async function startSidecar(options: SidecarOptions): Promise<Target> {
  const nodeArgs = [...(options.runtime?.nodeArgs ?? []), ...(options.cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', options.cpuProfDir] : [])];
  const args = [
    ...nodeArgs,
    options.cli,
    '--registry', options.registry,
    '--outbound-port', '0',
    '--inbound-port', '0',
    '--app-port', String(options.appPort),
    '--admin-port', '0',
    '--log-level', 'info',
    ...(options.extraArgs ?? []),
  ];
  const env = options.runtime ? runtimeEnv(options.runtime) : process.env;
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
  const output: string[] = [];
  track(child, 'sidecar', output);
  tail(child, output);
  const ports: Record<string, number> = {};
  let buffered = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    buffered += chunk.toString('utf8');
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      options.onLine?.(line);
      try {
        const entry = JSON.parse(line) as { msg?: string; listener?: string; port?: number };
        if (entry.msg === 'listening' && typeof entry.listener === 'string' && typeof entry.port === 'number') ports[entry.listener] = entry.port;
      } catch {
        // not a JSON log line
      }
    }
  });
  const stop = () => stopChild(child, 10_000);
  const timeoutMs = options.timeoutMs ?? 20_000;
  const started = Date.now();
  const why = (what: string) => new Error(`sidecar ${what}: ${output.slice(-8).join(' | ') || 'no output'}`);
  while (!(ports['outbound'] && ports['inbound'] && ports['admin'])) {
    if (child.exitCode !== null || child.signalCode !== null) throw why(`exited (${child.signalCode ?? child.exitCode}) before listening`);
    if (Date.now() - started > timeoutMs) {
      await stop();
      throw why(`did not log outbound, inbound and admin listeners within ${timeoutMs} ms (saw ${JSON.stringify(ports)})`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  while ((await status(ports['admin'], '/readyz')) !== 200) {
    if (child.exitCode !== null) throw why('exited before ready');
    if (Date.now() - started > timeoutMs) {
      await stop();
      throw why(`/readyz not 200 within ${timeoutMs} ms`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  return { name: 'sidecar', pid: child.pid!, ports, child, output, stop };
}

function status(port: number, path: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path, timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', () => resolve(0));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}
