/*
 * What the example services share: settings from the environment, the sidecar hook-up, the
 * downstream call, the JSON answer and the start and stop. Each service file shows its own use of
 * the SDK; inventory-api.ts holds the gRPC side.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EnvHttpProxyAgent, setGlobalDispatcher } from 'undici';
import type { DevstackSdk } from '@devstack/sdk';

export interface Settings {
  service: string;
  /** `base`, or the routing key of the feature copy this process is. */
  lane: string;
  port: number;
  host: string;
  /** Proxyless mode: the registry file the SDK routes from (no sidecar). */
  registry: string | undefined;
}

export function settings(service: string, env: NodeJS.ProcessEnv = process.env): Settings {
  return {
    service,
    lane: env['DEVSTACK_LANE'] || 'base',
    port: Number(env['PORT'] ?? 8080),
    host: env['HOST'] || '127.0.0.1',
    registry: env['DEVSTACK_REGISTRY'] || undefined,
  };
}

/**
 * Sidecar mode: calls to `http://orders/` go to the sidecar's outbound listener named by
 * HTTP_PROXY, in absolute form. Node's own env proxy support (NODE_USE_ENV_PROXY) works too, but
 * it tunnels plain http through CONNECT; undici's agent without tunnelling skips that round trip.
 */
export function useSidecar(s: Settings, env: NodeJS.ProcessEnv = process.env): void {
  if (s.registry === undefined && (env['HTTP_PROXY'] || env['http_proxy'])) setGlobalDispatcher(new EnvHttpProxyAgent({ proxyTunnel: false }));
}

/** What every service answers: who served the request, and what its downstream call returned. */
export interface Reply {
  service: string;
  lane: string;
  /** Present only when the downstream call failed: the HTTP status, or null without a response. */
  status?: number | null;
  /** What the gRPC call returned (orders -> inventory). */
  grpc?: Reply | Failure;
  downstream?: Reply | Failure;
}

export interface Failure {
  /** The HTTP status, or null without an HTTP response (a gRPC call's answer included). */
  status: number | null;
  /** A failed gRPC call: its status name, such as `UNAVAILABLE`. */
  grpc?: string;
  /** A stable code: the sidecar's or SDK's error code, a socket error code, `HTTP_<status>` or `GRPC_<status>`. */
  error: string;
  message?: string;
}

function isReply(body: unknown): body is Reply {
  return typeof body === 'object' && body !== null && typeof (body as Reply).service === 'string';
}

/** Calls a downstream service by its logical name. A failure is part of the answer, never hidden. */
export async function callDownstream(url: string, timeoutMs = 5_000): Promise<{ ok: boolean; downstream: Reply | Failure }> {
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  } catch (error) {
    const cause = (error as { cause?: { code?: unknown; message?: unknown } }).cause;
    const code = typeof cause?.code === 'string' ? cause.code : (error as Error).name;
    const message = typeof cause?.message === 'string' ? cause.message : (error as Error).message;
    return { ok: false, downstream: { status: null, error: code, message } };
  }
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (isReply(body)) return res.ok ? { ok: true, downstream: body } : { ok: false, downstream: { ...body, status: res.status } };
  const error = (body as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  return {
    ok: false,
    downstream: {
      status: res.status,
      error: typeof error?.code === 'string' ? error.code : `HTTP_${res.status}`,
      ...(typeof error?.message === 'string' ? { message: error.message } : {}),
    },
  };
}

export function reply(res: ServerResponse, status: number, body: unknown): void {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

/** Health for container probes: answered without a downstream call. */
export function isHealthCheck(req: IncomingMessage): boolean {
  return req.url === '/healthz';
}

/** A port that cannot be bound ends the process at once, with one line saying why. */
export function cannotListen(s: Settings, error: NodeJS.ErrnoException): never {
  const why = error.code === 'EADDRINUSE' || /EADDRINUSE/.test(error.message) ? `port ${s.port} is already in use` : error.message;
  process.stderr.write(`${s.service}: cannot listen on ${s.host}:${s.port}: ${why}\n`);
  process.exit(1);
}

/**
 * Logs the one JSON line the demo launcher waits for, and stops cleanly on SIGTERM/SIGINT: `close`
 * lets in-flight requests finish, then the SDK lets go and the process exits 0.
 */
export function announce(s: Settings, sdk: DevstackSdk, port: number, close: (done: () => void) => void): void {
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    close(() => void sdk.close().finally(() => process.exit(0)));
  };
  // Before the line: whoever waits for it may signal at once.
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  const mode = sdk.proxyless ? 'proxyless' : 'sidecar';
  console.log(JSON.stringify({ msg: 'listening', service: s.service, lane: s.lane, mode, port }));
}

/**
 * An HTTP service: no new connections on stop, idle keep-alive ones closed, in-flight requests
 * finish, then `release` lets go of what else the service holds (web's reply queue loop).
 */
export async function listen(server: Server, s: Settings, sdk: DevstackSdk, release?: () => Promise<void> | undefined): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(s.port, s.host, () => resolve());
  }).catch((error: NodeJS.ErrnoException) => cannotListen(s, error));
  announce(s, sdk, (server.address() as AddressInfo).port, (done) => {
    const idle = setInterval(() => server.closeIdleConnections(), 50);
    server.close(() => {
      clearInterval(idle);
      void Promise.resolve(release?.()).finally(done);
    });
  });
}
