/*
 * Starts the demo fleet of plan.ts as child processes (the SQS server, each app and worker, a sidecar
 * next to each app that is not proxyless, and the edge), waits until every one says it is ready, and
 * stops them all again. `npm start`
 * and the end-to-end test both use this, so the test runs exactly what a newcomer sees.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { DOMAIN, ENTRY, GRPC, GRPC_DOWNSTREAM, makePlan, portsNeeded, PUBLISHER, registryDocument, WORKERS, type Instance, type Plan } from './plan.ts';

export type FleetErrorCode = 'DEVSTACK_DEMO_PORT_IN_USE' | 'DEVSTACK_DEMO_START_FAILED' | 'DEVSTACK_DEMO_BAD_OPTION';

export class FleetError extends Error {
  readonly code: FleetErrorCode;
  /** The folder with the processes' logs, kept when the start failed. */
  readonly dir: string | undefined;

  constructor(code: FleetErrorCode, message: string, options?: { cause?: unknown; dir?: string }) {
    super(message, options);
    this.name = 'FleetError';
    this.code = code;
    this.dir = options?.dir;
  }
}

export interface FleetOptions {
  /** The edge's port. Default 8080; 0 picks a free one. */
  port?: number;
  /** Address every listener binds. Default 127.0.0.1: the demo is not reachable from elsewhere. */
  host?: string;
  /** How long every process together may take to become ready. Default 20 s. */
  readyTimeoutMs?: number;
  /** Grace for each process after SIGTERM before it is killed. Default 5 s. */
  stopTimeoutMs?: number;
}

export interface FleetProcess {
  name: string;
  pid: number;
  ports: number[];
  log: string;
  /** Resolves when the process has exited, whoever ended it. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface Fleet {
  readonly plan: Plan;
  /** Temporary folder with the registry file and a log per process; removed by stop(). */
  readonly dir: string;
  readonly registryPath: string;
  /** `http://example.localhost:<port>` (send Host accordingly when connecting to 127.0.0.1). */
  readonly edgeUrl: string;
  /** The SQS server's endpoint, `http://127.0.0.1:<port>`. */
  readonly sqsUrl: string;
  readonly processes: readonly FleetProcess[];
  /** Resolves with a message if a process exits while the fleet runs (not during stop()). */
  readonly failure: Promise<string>;
  /**
   * SIGTERM to every process, SIGKILL after the grace period, then the folder is removed (kept with
   * `keepLogs`, to read why something failed). Idempotent.
   */
  stop(options?: { keepLogs?: boolean }): Promise<void>;
}

const SIDECAR_CLI = fileURLToPath(new URL('./cli.js', import.meta.resolve('@devstack/sidecar')));
const SERVICE_DIR = fileURLToPath(new URL('./services/', import.meta.url));
const SQS_SERVER = fileURLToPath(new URL('./sqs-server.ts', import.meta.url));
/** Drain time the sidecars get on Ctrl-C: a demo should stop in a moment. */
const SIDECAR_SHUTDOWN_MS = 2_000;

function listenOnce(port: number, host: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ port, host, exclusive: true }, () => resolve(server));
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/** Free ports, all distinct: held open together, then released for the children to bind. */
export async function freePorts(count: number, host: string): Promise<number[]> {
  const servers = await Promise.all(Array.from({ length: count }, () => listenOnce(0, host)));
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map(closeServer));
  return ports;
}

/** Fails early and clearly when the edge's port is taken, before anything is started. */
export async function assertPortFree(port: number, host: string): Promise<void> {
  try {
    await closeServer(await listenOnce(port, host));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') throw new FleetError('DEVSTACK_DEMO_PORT_IN_USE', `port ${port} on ${host} is already in use; stop what uses it, or pick another port with --port N (or DEVSTACK_DEMO_PORT=N)`, { cause: error });
    throw new FleetError('DEVSTACK_DEMO_START_FAILED', `cannot listen on ${host}:${port}: ${(error as Error).message}`, { cause: error });
  }
}

/** The parent's environment without what would change a child's behaviour behind the demo's back. */
function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    // DEVSTACK_* are sidecar flags; proxies would catch the apps' calls; NODE_OPTIONS may carry a test runner's hooks.
    if (/^(DEVSTACK_|NODE_OPTIONS$|NODE_USE_ENV_PROXY$|(HTTP|HTTPS|NO|ALL|GRPC|NO_GRPC)_PROXY$)/i.test(name)) continue;
    env[name] = value;
  }
  return { ...env, ...extra };
}

interface Spec {
  name: string;
  args: string[];
  env: Record<string, string>;
  ports: number[];
  /** The JSON log line that says the process is ready. */
  ready: (line: Record<string, unknown>) => boolean;
}

function sidecarArgs(plan: Plan, registry: string, flags: Record<string, string | number | undefined>): string[] {
  const args = [SIDECAR_CLI, '--registry', registry, '--shutdown-timeout', String(SIDECAR_SHUTDOWN_MS)];
  for (const [flag, value] of Object.entries(flags)) if (value !== undefined) args.push(`--${flag}`, String(value));
  return args;
}

function specs(plan: Plan, registry: string): Spec[] {
  const h = plan.host;
  const sidecarReady = (line: Record<string, unknown>) => line['msg'] === 'ready';
  const sqs = `http://${h}:${plan.sqs.port}`;
  const list: Spec[] = [{ name: 'sqs', args: [SQS_SERVER], env: { PORT: String(plan.sqs.port), HOST: h }, ports: [plan.sqs.port], ready: (line) => line['msg'] === 'listening' }];
  for (const i of plan.instances) {
    const name = `${i.service}@${i.lane}`;
    if (WORKERS.has(i.service)) {
      // No port: ready once its consumer runs. Proxyless: the SDK decides from the registry file.
      const env = { DEVSTACK_LANE: i.lane, DEVSTACK_REGISTRY: registry, SQS_ENDPOINT: sqs };
      list.push({ name, args: [join(SERVICE_DIR, `${i.service}.ts`)], env, ports: [], ready: (line) => line['msg'] === 'consuming' });
      continue;
    }
    const env: Record<string, string> = { PORT: String(i.appPort), HOST: h, DEVSTACK_LANE: i.lane };
    if (i.sidecar === undefined) env['DEVSTACK_REGISTRY'] = registry;
    else env['HTTP_PROXY'] = `http://${h}:${i.sidecar.outbound}`;
    // orders calls inventory only when INVENTORY names it (a registry name, routed like a Host).
    if (GRPC_DOWNSTREAM[i.service] === 'inventory') env['INVENTORY'] = 'inventory';
    // web publishes to the SQS server only when SQS_ENDPOINT names it.
    if (i.service === PUBLISHER) env['SQS_ENDPOINT'] = sqs;
    list.push({ name, args: [join(SERVICE_DIR, `${i.service}.ts`)], env, ports: [i.appPort!], ready: (line) => line['msg'] === 'listening' });
    if (i.sidecar === undefined) continue;
    const s = i.sidecar;
    list.push({
      name: `sidecar ${name}`,
      args: sidecarArgs(plan, registry, {
        'inbound-port': s.inbound, 'inbound-host': h, 'app-port': i.appPort!, 'app-host': h,
        'outbound-port': s.outbound, 'outbound-host': h, 'admin-port': s.admin, 'admin-host': h,
        'default-key': i.lane === 'base' ? undefined : i.lane,
        'app-protocol': GRPC.has(i.service) ? 'h2c' : undefined,
      }),
      env: {},
      ports: [s.inbound, s.outbound, s.admin],
      ready: sidecarReady,
    });
  }
  list.push({
    name: 'edge',
    args: sidecarArgs(plan, registry, { 'edge-port': plan.edge.port, 'edge-host': h, domain: DOMAIN, entry: ENTRY, 'admin-port': plan.edge.admin, 'admin-host': h }),
    env: {},
    ports: [plan.edge.port, plan.edge.admin],
    ready: sidecarReady,
  });
  return list;
}

interface Child {
  spec: Spec;
  proc: ChildProcess;
  log: string;
  ready: Promise<void>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Last lines of stderr, for the error message when it fails. */
  tail: string[];
}

function start(spec: Spec, logDir: string): Child {
  const log = join(logDir, `${spec.name.replace(/[^a-z0-9@-]+/gi, '-')}.log`);
  const out: WriteStream = createWriteStream(log);
  const proc = spawn(process.execPath, spec.args, { env: childEnv(spec.env), stdio: ['ignore', 'pipe', 'pipe'] });
  const tail: string[] = [];
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    proc.once('exit', (code, signal) => resolve({ code, signal }));
    // A spawn failure (no exit event follows) counts as an exit too.
    proc.once('error', () => resolve({ code: proc.exitCode, signal: null }));
  });
  const ready = new Promise<void>((resolve) => {
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      out.write(`${line}\n`);
      try {
        if (spec.ready(JSON.parse(line) as Record<string, unknown>)) resolve();
      } catch {
        // not a JSON line: only logged
      }
    });
  });
  createInterface({ input: proc.stderr! }).on('line', (line) => {
    out.write(`${line}\n`);
    tail.push(line);
    if (tail.length > 10) tail.shift();
  });
  void exited.then(() => out.end());
  return { spec, proc, log, ready, exited, tail };
}

function describeExit(child: Child, how: { code: number | null; signal: NodeJS.Signals | null }): string {
  const status = how.signal ? `signal ${how.signal}` : `code ${how.code}`;
  const said = child.tail.filter((l) => !/ExperimentalWarning|--trace-warnings/.test(l)).slice(-3).join(' | ');
  return `${child.spec.name} exited (${status})${said ? `: ${said}` : ''} [log: ${child.log}]`;
}

/** One request through the edge, as a curl would send it: proves the whole chain answers. */
function probe(plan: Plan): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: plan.host, port: plan.edge.port, path: '/', headers: { host: `${DOMAIN}:${plan.edge.port}` }, timeout: 5_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 5 s')));
    req.on('error', reject);
  });
}

export async function startFleet(options: FleetOptions = {}): Promise<Fleet> {
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? 8080;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new FleetError('DEVSTACK_DEMO_BAD_OPTION', `port must be an integer from 0 to 65535, got ${String(port)}`);
  if (port !== 0) await assertPortFree(port, host);
  // The children's ports are picked free, then bound by the children a moment later: another
  // process may take one in between. That is no reason to give up: pick again, a few times.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(options, host, port);
    } catch (error) {
      if (attempt >= 3 || !(error instanceof FleetError) || error.code !== 'DEVSTACK_DEMO_PORT_IN_USE') throw error;
    }
  }
}

async function startOnce(options: FleetOptions, host: string, port: number): Promise<Fleet> {
  const ports = await freePorts(portsNeeded() + (port === 0 ? 1 : 0), host);
  const plan = makePlan(host, port === 0 ? ports.pop()! : port, ports);

  const dir = await mkdtemp(join(tmpdir(), 'devstack-demo-'));
  const registryPath = join(dir, 'registry.json');
  const logDir = dir;
  // JSON is YAML: the registry file source reads either.
  await writeFile(registryPath, `${JSON.stringify(registryDocument(plan), null, 2)}\n`);

  const children = specs(plan, registryPath).map((spec) => start(spec, logDir));
  // If this process dies without stop(), its children must not outlive it.
  const killAll = () => children.forEach((c) => c.proc.exitCode === null && c.proc.signalCode === null && c.proc.kill('SIGKILL'));
  process.on('exit', killAll);

  let stopping: Promise<void> | undefined;
  const stop = (stopOptions: { keepLogs?: boolean } = {}): Promise<void> =>
    (stopping ??= (async () => {
      for (const c of children) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGTERM');
      const timer = setTimeout(killAll, options.stopTimeoutMs ?? 5_000);
      await Promise.all(children.map((c) => c.exited));
      clearTimeout(timer);
      process.off('exit', killAll);
      if (stopOptions.keepLogs !== true) await rm(dir, { recursive: true, force: true });
    })());

  const failure = new Promise<string>((resolve) => {
    for (const c of children) void c.exited.then((how) => stopping === undefined && resolve(describeExit(c, how)));
  });

  const timeoutMs = options.readyTimeoutMs ?? 20_000;
  let timer: NodeJS.Timeout | undefined;
  const problem = await Promise.race([
    Promise.all(children.map((c) => c.ready)).then(() => undefined),
    failure,
    new Promise<string>((resolve) => {
      timer = setTimeout(() => {
        const waiting = children.filter((c) => c.proc.exitCode === null).map((c) => c.spec.name);
        resolve(`not ready after ${timeoutMs} ms; still waiting for ${waiting.join(', ')} [logs: ${logDir}]`);
      }, timeoutMs);
    }),
  ]);
  clearTimeout(timer);
  const status = problem === undefined ? await probe(plan).catch((error: Error) => error.message) : undefined;
  if (problem !== undefined || status !== 200) {
    const message = problem ?? `the fleet started but a request through the edge failed: ${String(status)}`;
    await stop({ keepLogs: true });
    throw new FleetError(/already in use/.test(message) ? 'DEVSTACK_DEMO_PORT_IN_USE' : 'DEVSTACK_DEMO_START_FAILED', message, { dir });
  }

  return {
    plan,
    dir,
    registryPath,
    edgeUrl: `http://${DOMAIN}:${plan.edge.port}`,
    sqsUrl: `http://${plan.host}:${plan.sqs.port}`,
    processes: children.map((c) => ({ name: c.spec.name, pid: c.proc.pid ?? -1, ports: c.spec.ports, log: c.log, exited: c.exited })),
    failure,
    stop,
  };
}

export type { Instance, Plan };
