/*
 * One routing step, two implementations of the outbound hop: the sidecar's outbound listener and
 * the SDK's proxyless mode (through fetch and through node:http). The same table of calls runs
 * against each, and each must agree on the target, the key carried on, the lane header, the
 * refusal or failure, and the request metric the call is counted under. The SDK's OpenTelemetry
 * propagator, a third party, must carry on the same key.
 */
import http, { createServer, type IncomingMessage, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { Registry } from 'prom-client';
import { ROOT_CONTEXT, defaultTextMapGetter, defaultTextMapSetter } from '@opentelemetry/api';
import { baggageValues, upstreamFailure, METRICS } from '@devstack/core';
import { FileSource } from '@devstack/registry-file';
import { Sidecar, createLogger } from '@devstack/sidecar';
import { init, withRouting, RoutingPropagator, RoutingRejectedError } from '@devstack/sdk';
import { rows, type Row } from './helpers/conformance-rows.ts';

interface Outcome {
  /** Upstream name, or a devstack code. */
  got: string;
  status: number;
  lane: string | undefined;
  key: string | undefined;
  baggageKey: string | undefined;
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

function close(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

function readBody(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    res.setEncoding('utf8');
    res.on('data', (c: string) => (text += c));
    res.on('end', () => resolve(text));
    res.on('error', reject);
  });
}

function outcomeOf(status: number, lane: string | undefined, body: string): Outcome {
  const json = JSON.parse(body) as { name?: string; key?: string; baggageKey?: string; error?: { code: string } };
  return { got: json.name ?? json.error?.code ?? '?', status, lane, key: json.key, baggageKey: json.baggageKey };
}

/** Total of `devstack_requests_total` for one label set, from either implementation's registry. */
async function counted(registry: Registry, labels: Record<string, string>): Promise<number> {
  const all = await registry.getMetricsAsJSON();
  const metric = all.find((m) => m.name === METRICS.requests);
  let sum = 0;
  for (const v of (metric?.values ?? []) as Array<{ labels: Record<string, string | number>; value: number }>) {
    if (Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want)) sum += v.value;
  }
  return sum;
}

/** Metrics are recorded when a response ends, which may be just after the caller has it. */
async function countedEventually(registry: Registry, labels: Record<string, string>, want: number): Promise<number> {
  let got = await counted(registry, labels);
  for (let i = 0; i < 200 && got < want; i++) {
    await new Promise((resolve) => setTimeout(resolve, 5));
    got = await counted(registry, labels);
  }
  return got;
}

type Runner = (row: Row) => Promise<Outcome>;

interface Implementation {
  name: string;
  metrics: Registry;
  call: Runner;
}


/** HTTP only: a dead copy falls back to base (strict: refused), over each client's passive health. */
const deadCopyRows: readonly Row[] = [
  { name: 'dead copy: base', host: 'dying', carriers: { 'uber-ctx-key': 'f3' }, expect: 'dying', status: 200, key: 'f3', lane: 'base', service: 'dying' },
  { name: 'dead copy, again: base', host: 'dying', carriers: { 'uber-ctx-key': 'f3' }, expect: 'dying', status: 200, key: 'f3', lane: 'base', service: 'dying' },
  { name: 'strict: dead copy refused', host: 'dying', carriers: { 'uber-ctx-key': 'f3' }, strict: true, expect: 'DEVSTACK_NO_READY_UPSTREAM', status: 503, lane: 'f3', service: 'dying' },
];
/**
 * Stacks (s1 on f1, s2 on s1, sp on parked, c1 and c2 a refused cycle): the first ready copy up the
 * stack serves and the lane names it, the key carried on stays the request's own.
 */
const stackRows: readonly Row[] = [
  { name: 'stacked: the parent’s copy', host: 'web', carriers: { 'uber-ctx-key': 's1' }, expect: 'web-f1', status: 200, key: 's1', lane: 'f1', service: 'web' },
  { name: 'stacked two levels', host: 'web', carriers: { 'uber-ctx-key': 's2' }, expect: 'web-f1', status: 200, key: 's2', lane: 'f1', service: 'web' },
  { name: 'stacked: a copy in the middle', host: 'cart', carriers: { 'uber-ctx-key': 's2' }, expect: 'cart-s1', status: 200, key: 's2', lane: 's1', service: 'cart' },
  { name: 'stacked: its own copy first', host: 'cart', carriers: { baggage: 'uber-ctx-key=s1' }, expect: 'cart-s1', status: 200, key: 's1', lane: 's1', service: 'cart' },
  { name: 'stacked: no copy in the stack: base', host: 'orders', carriers: { 'uber-ctx-key': 's2' }, expect: 'orders', status: 200, key: 's2', lane: 'base', service: 'orders' },
  { name: 'stacked: the copy up the stack not ready: base', host: 'orders', carriers: { 'uber-ctx-key': 'sp' }, expect: 'orders', status: 200, key: 'sp', lane: 'base', service: 'orders' },
  { name: 'stacked: a cycle resolves unstacked', host: 'web', carriers: { 'uber-ctx-key': 'c1' }, expect: 'web', status: 200, key: 'c1', lane: 'base', service: 'web' },
  { name: 'strict, stacked: the parent’s copy', host: 'web', carriers: { 'uber-ctx-key': 's2' }, strict: true, expect: 'web-f1', status: 200, key: 's2', lane: 'f1', service: 'web' },
  { name: 'strict, stacked: no copy in the stack: base', host: 'orders', carriers: { 'uber-ctx-key': 's2' }, strict: true, expect: 'orders', status: 200, key: 's2', lane: 'base', service: 'orders' },
  { name: 'strict, stacked: none ready refused', host: 'orders', carriers: { 'uber-ctx-key': 'sp' }, strict: true, expect: 'DEVSTACK_NO_FEATURE_COPY', status: 503, lane: 'parked', service: 'orders' },
  { name: 'strict, stacked: a cycle refused as unknown', host: 'web', carriers: { 'uber-ctx-key': 'c1' }, strict: true, expect: 'DEVSTACK_NO_FEATURE_COPY', status: 503, lane: 'none', service: 'web' },
  { name: 'stacked under a default key', host: 'web', carriers: {}, defaultKey: 's2', expect: 'web-f1', status: 200, key: 's2', lane: 'f1', service: 'web' },
];
const table = [...rows, ...deadCopyRows, ...stackRows];

t.test('the sidecar and the SDK make the same routing step', async (t) => {
  const dir = t.testdir();
  const servers: Server[] = [];
  const upstream = async (name: string): Promise<string> => {
    const server = createServer((req, res) => {
      const plain = req.headers['uber-ctx-key'];
      const baggageKey = /(?:^|,)\s*uber-ctx-key=([^,;]*)/.exec(String(req.headers['baggage'] ?? ''))?.[1];
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ name, key: plain, baggageKey }));
    });
    servers.push(server);
    return `http://127.0.0.1:${await listen(server)}`;
  };
  const registry = join(dir, 'registry.json');
  writeFileSync(
    registry,
    JSON.stringify({
      services: {
        web: { base: await upstream('web'), features: { f1: await upstream('web-f1') } },
        orders: { base: await upstream('orders'), features: { f2: await upstream('orders-f2'), parked: { url: await upstream('orders-parked'), ready: false } } },
        idle: { base: { url: await upstream('idle'), ready: false } },
        // Port 1: privileged, so no test's listen(0) can be handed it while files run in parallel.
        gone: { base: 'http://127.0.0.1:1' },
        // A copy whose process died, the registry unchanged: nothing listens on port 2 (privileged,
        // never handed out by listen(0), and not one of the ports fetch refuses to call).
        dying: { base: await upstream('dying'), features: { f3: 'http://127.0.0.1:2' } },
        cart: { base: await upstream('cart'), features: { s1: await upstream('cart-s1'), f1: await upstream('cart-f1') } },
      },
      stacks: { s1: 'f1', s2: 's1', sp: 'parked', c1: 'c2', c2: 'c1' },
    }),
  );
  t.teardown(() => Promise.all(servers.map(close)));

  // Each (defaultKey, strict) configuration gets its own sidecar and SDK, made on first use.
  const sidecars = new Map<string, { sidecar: Sidecar; metrics: Registry }>();
  const sidecarFor = async (row: Row): Promise<{ sidecar: Sidecar; metrics: Registry }> => {
    const id = `${row.defaultKey ?? ''}/${row.strict === true}`;
    let entry = sidecars.get(id);
    if (entry === undefined) {
      const sidecar = new Sidecar({ source: new FileSource({ path: registry }), outbound: { port: 0 }, defaultKey: row.defaultKey, strict: row.strict, logger: createLogger('silent') });
      await sidecar.start();
      entry = { sidecar, metrics: sidecar.metrics.registry };
      sidecars.set(id, entry);
    }
    return entry;
  };
  t.teardown(() => Promise.all([...sidecars.values()].map((e) => e.sidecar.close())));

  const sidecarCall: Runner = async (row) => {
    const { sidecar } = await sidecarFor(row);
    const port = sidecar.addresses.outbound!.port;
    // The app propagated its inbound carriers on its call, as an app behind a sidecar does.
    return new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, path: '/', headers: { host: row.host, ...row.carriers }, agent: false }, (res) => {
        readBody(res).then((body) => resolve(outcomeOf(res.statusCode!, res.headers['x-devstack-lane'] as string | undefined, body)), reject);
      });
      req.on('error', reject);
      req.end();
    });
  };

  /** An app handling an inbound request with `withRouting`, calling `row.host` the way `client` does. */
  const sdkCall = (client: 'fetch' | 'http'): Runner => async (row) => {
    const app = createServer(
      withRouting(async (_req, res) => {
        const answer = (status: number, lane: string | undefined, body: string) => {
          const text = JSON.stringify({ status, lane, body });
          res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
          res.end(text);
        };
        const failed = (error: unknown) => {
          // fetch wraps the SDK's refusal in its TypeError; node:http emits the refusal itself, whose
          // own cause is the connect failure behind it.
          const cause = error instanceof RoutingRejectedError ? error : ((error as { cause?: unknown }).cause ?? error);
          const known = cause instanceof RoutingRejectedError ? cause : upstreamFailure(cause);
          answer(known.status, (cause as { lane?: string }).lane, JSON.stringify({ error: { code: known.code } }));
        };
        try {
          if (client === 'fetch') {
            const r = await fetch(`http://${row.host}/`);
            answer(r.status, r.headers.get('x-devstack-lane') ?? undefined, await r.text());
          } else {
            const req = http.get(`http://${row.host}/`, (r) => {
              readBody(r).then((body) => answer(r.statusCode!, r.headers['x-devstack-lane'] as string | undefined, body), failed);
            });
            req.on('error', failed);
          }
        } catch (error) {
          failed(error);
        }
      }),
    );
    const port = await listen(app);
    try {
      const reply = await fetchJson(port, row.carriers);
      return outcomeOf(reply.status, reply.lane, reply.body);
    } finally {
      await close(app);
    }
  };

  const configs = [...new Set(table.map((r) => `${r.defaultKey ?? ''}/${r.strict === true}`))];
  const check = async (impl: Implementation, row: Row, config: string) => {
    const what = `${row.name} [${config}] via ${impl.name}`;
    const labels = { direction: 'outbound', service: row.service, lane: row.lane, status: String(row.status) };
    const before = await counted(impl.metrics, labels);
    const out = await impl.call(row);
    t.equal(out.got, row.expect, `${what}: target or refusal`);
    t.equal(out.status, row.status, `${what}: status`);
    if (out.status === 200) {
      t.equal(out.lane, row.lane, `${what}: lane header`);
      t.equal(out.key, row.key, `${what}: key carried on (plain header)`);
      t.equal(out.baggageKey, row.key, `${what}: key carried on (baggage)`);
    } else if (impl.name === 'sidecar') {
      t.equal(out.lane, row.lane, `${what}: lane header of the refusal`);
    }
    t.equal(await countedEventually(impl.metrics, labels, before + 1), before + 1, `${what}: counted once as ${JSON.stringify(labels)}`);
  };

  // The sidecar first, with no SDK in the process: the SDK would otherwise also act on the test's
  // own client calls and on the sidecar's upstream calls.
  for (const row of table) {
    const config = `${row.defaultKey ?? ''}/${row.strict === true}`;
    await check({ name: 'sidecar', metrics: (await sidecarFor(row)).metrics, call: sidecarCall }, row, config);
  }
  const propagator = new RoutingPropagator();
  for (const config of configs) {
    const [defaultKey, strict] = config.split('/') as [string, string];
    const sdkMetrics = new Registry();
    const sdk = init({ registry, lane: defaultKey === '' ? 'base' : defaultKey, strict: strict === 'true', metrics: sdkMetrics });
    try {
      await sdk.ready;
      for (const row of table.filter((r) => `${r.defaultKey ?? ''}/${r.strict === true}` === config)) {
        await check({ name: 'sdk fetch', metrics: sdkMetrics, call: sdkCall('fetch') }, row, config);
        await check({ name: 'sdk http', metrics: sdkMetrics, call: sdkCall('http') }, row, config);
        // The third party: what OpenTelemetry's instrumentations carry with the SDK's propagator.
        if (row.status !== 200) continue;
        const out: Record<string, string> = {};
        propagator.inject(propagator.extract(ROOT_CONTEXT, row.carriers, defaultTextMapGetter), out, defaultTextMapSetter);
        t.equal(out['uber-ctx-key'], row.key, `${row.name} [${config}] via the propagator: plain header`);
        t.same(baggageValues(out['baggage'], 'uber-ctx-key'), row.key === undefined ? [] : [row.key], `${row.name} [${config}] via the propagator: baggage`);
      }
    } finally {
      await sdk.close();
    }
  }
});

/** A request over a bare socket: the SDK, active in this process, must not touch the test's own call. */
function fetchJson(port: number, headers: Record<string, string>): Promise<{ status: number; lane: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const lines = ['GET / HTTP/1.1', 'Host: app', 'Connection: close', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
    const socket = connect(port, '127.0.0.1', () => socket.write(`${lines.join('\r\n')}\r\n\r\n`));
    let got = '';
    socket.setEncoding('utf8');
    socket.on('data', (c: string) => (got += c));
    socket.on('error', reject);
    socket.on('close', () => {
      const body = got.slice(got.indexOf('\r\n\r\n') + 4);
      // The app answers with Content-Length, so the body is the JSON object itself.
      resolve(JSON.parse(body) as { status: number; lane: string | undefined; body: string });
    });
  });
}
