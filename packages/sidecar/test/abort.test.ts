import t from 'tap';
import { request, type ClientRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { createLogger } from '@devstack/sidecar';
import { send, sidecar, upstream, writeRegistry, type Tap } from './helpers.ts';

/**
 * A port nothing listens on: connecting is refused, so the sidecar retries on the next target.
 * Port 1 is privileged, so no test's listen(0) can be handed it while files run in parallel.
 */
const REFUSING_ORIGIN = 'http://127.0.0.1:1';

/** An upstream that never answers; each request's arrival and the close of its socket are events. */
async function hangingUpstream(t: Tap) {
  const arrivals: { req: IncomingMessage; res: ServerResponse; closed: Promise<void> }[] = [];
  const waiters: (() => void)[] = [];
  const server = await upstream(t, 'hang', (req, res) => {
    const socket = req.socket as Socket;
    arrivals.push({ req, res, closed: new Promise<void>((resolve) => socket.once('close', () => resolve())) });
    waiters.splice(0).forEach((w) => w());
  });
  const arrival = async (n: number) => {
    while (arrivals.length < n) await new Promise<void>((resolve) => waiters.push(resolve));
    return arrivals[n - 1]!;
  };
  return { origin: server.origin, arrival, count: () => arrivals.length };
}

function open(port: number, headers: Record<string, string>): ClientRequest {
  const req = request({ host: '127.0.0.1', port, headers, agent: false });
  req.on('error', () => undefined); // destroyed on purpose
  req.end();
  return req;
}

t.test('a retried request is aborted upstream when its client leaves', async (t) => {
  const dir = t.testdir();
  const hang = await hangingUpstream(t);
  // Round robin starts at the first target: the refused one, so the request is retried on `hang`.
  const s = await sidecar(t, writeRegistry(dir, { a: { base: [REFUSING_ORIGIN, hang.origin] } }));
  const client = open(s.addresses.outbound!.port, { host: 'a' });
  const first = await hang.arrival(1);
  const metrics = (await send(s.addresses.admin!.port, { path: '/metrics' })).body;
  t.match(metrics, /devstack_upstream_errors_total\{direction="outbound",service="a",code="DEVSTACK_UPSTREAM_UNREACHABLE"\} 1/, 'the first attempt failed and was retried');
  client.destroy();
  await first.closed;
  t.equal(first.req.socket.destroyed, true, 'the upstream saw its request connection closed');
});

t.test('a request whose client left while it waited for a pooled connection is never sent', async (t) => {
  const dir = t.testdir();
  const hang = await hangingUpstream(t);
  const s = await sidecar(t, writeRegistry(dir, { a: { base: hang.origin } }), { connections: 1 });
  const port = s.addresses.outbound!.port;
  open(port, { host: 'a' });
  const first = await hang.arrival(1);
  // `Expect: 100-continue` makes the sidecar say when it has taken the request in: then it is queued.
  // No body: nothing but the client's leaving can tell the sidecar the request is abandoned.
  const queued = request({ host: '127.0.0.1', port, headers: { host: 'a', expect: '100-continue' }, agent: false });
  queued.on('error', () => undefined);
  await new Promise<void>((resolve) => queued.once('continue', () => resolve()));
  queued.destroy();
  // The sidecar counts the exchange as aborted once it has seen the client go.
  const aborted = () => send(s.addresses.admin!.port, { path: '/metrics' }).then((r) => /status="aborted"\} 1/.test(r.body));
  for (let i = 0; i < 1000 && !(await aborted()); i++) await new Promise((r) => setImmediate(r));
  // The only connection frees up; the queued request must not take it for a client that is gone.
  first.res.end('done');
  await first.closed;
  t.equal(hang.count(), 1, 'the upstream never received the abandoned request');
});

t.test('shutdown ends at its deadline whatever is still open, and says what it cut', async (t) => {
  const dir = t.testdir();
  const hang = await hangingUpstream(t);
  const lines: string[] = [];
  const s = await sidecar(t, writeRegistry(dir, { a: { base: [REFUSING_ORIGIN, hang.origin] } }), {
    shutdownTimeoutMs: 50,
    logger: createLogger('info', (line) => lines.push(line)),
  });
  const answered = new Promise<string>((resolve) => {
    const req = request({ host: '127.0.0.1', port: s.addresses.outbound!.port, headers: { host: 'a' }, agent: false }, () => resolve('answered'));
    req.on('error', (error) => resolve((error as NodeJS.ErrnoException).code ?? 'error'));
    req.end();
  });
  const held = await hang.arrival(1);
  await s.close();
  const cut = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l['msg'] === 'shutdown deadline reached; cutting what is left');
  t.same(cut && { connections: cut['connections'], upgraded: cut['upgraded'], upstreamRequests: cut['upstreamRequests'] }, { connections: 1, upgraded: 0, upstreamRequests: 1 });
  t.equal(await answered, 'ECONNRESET', 'the client connection was cut');
  await held.closed;
  t.equal(held.req.socket.destroyed, true, 'the upstream request was cut too');
  t.ok(lines.some((l) => l.includes('"msg":"stopped"')), 'then the sidecar stopped');
});
