/*
 * End to end: the fleet `npm start` runs (the same launcher, on free ports), checked through the
 * edge the way a curl would reach it, then stopped with nothing left behind.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, rename, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import t from 'tap';
import { FleetError, startFleet } from '../src/fleet.ts';
import { DOMAIN, expectedEvent, expectedReply } from '../src/plan.ts';
import { Inventory, type InventoryClient, type ReserveReply } from '../src/services/inventory-api.ts';

// The subtest type: the last overload of t.test is `(cb)`.
type Test = Parameters<Parameters<typeof t.test>[0]>[0];

interface Answer {
  status: number;
  lane: string | undefined;
  body: unknown;
}

function get(port: number, headers: Record<string, string>, method = 'GET', path = '/'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    // agent: false, so no idle keep-alive socket of the test holds the edge open at stop().
    const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent: false, timeout: 10_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, lane: res.headers['x-devstack-lane'] as string | undefined, body: JSON.parse(text) as unknown }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** POST /events's answer: the publisher and the worker lane that processed the event. */
interface Published {
  service: string;
  lane: string;
  published: { queue: string; key: string | null };
  processed: { service: string; lane: string; reason: string; receives: number };
}

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED'));
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A gRPC call the way an app behind a sidecar makes it: to the outbound listener, naming the service in the authority. */
function reserveVia(outbound: number, metadata: Record<string, string>): Promise<{ reply?: ReserveReply; error?: grpc.ServiceError; lanes: string[] }> {
  const client = new Inventory(`127.0.0.1:${outbound}`, grpc.credentials.createInsecure(), { 'grpc.default_authority': 'inventory', 'grpc.enable_http_proxy': 0 }) as unknown as InventoryClient;
  const md = new grpc.Metadata();
  for (const [name, value] of Object.entries(metadata)) md.set(name, value);
  let lanes: string[] = [];
  return new Promise<{ reply?: ReserveReply; error?: grpc.ServiceError; lanes: string[] }>((resolve) => {
    const call = client.Reserve({ item: 'test' }, md, { deadline: Date.now() + 5_000 }, (error, reply) => resolve(error ? { error, lanes } : { reply, lanes }));
    call.on('metadata', (m: grpc.Metadata) => (lanes = m.get('x-devstack-lane').map(String)));
  }).finally(() => client.close());
}

// orders asks inventory over gRPC (`grpc`) and calls payments over HTTP (`downstream`).
const F1 = { service: 'web', lane: 'feature1', downstream: { service: 'orders', lane: 'base', grpc: { service: 'inventory', lane: 'feature1' }, downstream: { service: 'payments', lane: 'feature1' } } };
const F2 = { service: 'web', lane: 'base', downstream: { service: 'orders', lane: 'feature2', grpc: { service: 'inventory', lane: 'base' }, downstream: { service: 'payments', lane: 'base' } } };
const BASE = { service: 'web', lane: 'base', downstream: { service: 'orders', lane: 'base', grpc: { service: 'inventory', lane: 'base' }, downstream: { service: 'payments', lane: 'base' } } };

t.test('the demo fleet, through the edge', async (t) => {
  const fleet = await startFleet({ port: 0 });
  t.teardown(() => fleet.stop());
  const port = fleet.plan.edge.port;
  const host = (sub?: string) => ({ host: `${sub === undefined ? '' : `${sub}.`}${DOMAIN}:${port}` });
  const expect = async (t: Test, headers: Record<string, string>, body: unknown, what: string) => {
    const a = await get(port, headers);
    t.equal(a.status, 200, `${what}: 200`);
    t.same(a.body, body, what);
    // Every value, not the one header: since sidecar commit 60a198a each devstack hop appends its own
    // x-devstack-lane instead of replacing the upstream's (reported), so one response carries
    // `feature1, feature1, feature1`. All of them must name the lane that answered.
    t.same(new Set(a.lane?.split(/,\s*/)), new Set([(body as { lane: string }).lane]), `${what}: x-devstack-lane names the lane that answered`);
  };

  t.test('the plan says what the issue says', async (t) => {
    t.same(expectedReply('feature1'), F1);
    t.same(expectedReply('feature2'), F2);
    t.same(expectedReply(undefined), BASE);
  });

  t.test("DESIGN.md's routing table", async (t) => {
    await expect(t, host('feature1'), F1, 'feature1.example.localhost -> feature1 copy');
    await expect(t, { ...host(), 'uber-ctx-key': 'feature1' }, F1, 'uber-ctx-key: feature1 -> feature1 copy');
    await expect(t, { ...host(), 'uber-ctx-key': 'feature2' }, F2, 'uber-ctx-key: feature2 -> feature2 copy');
    await expect(t, host(), BASE, 'no key -> base');
  });

  t.test('chain rule: a copy where the lane has one, base elsewhere, at every hop', async (t) => {
    // feature1: web and payments have copies, orders (in between) does not.
    await expect(t, host('feature1'), F1, 'feature1 skips back into its lane after a base hop');
    // feature2: only orders, in the middle of the chain, has a copy.
    await expect(t, host('feature2'), F2, 'feature2 leaves its lane after its copy');
  });

  t.test('the gRPC hop: orders (proxyless) -> inventory (a sidecar in front, h2c to the app)', async (t) => {
    const inventoryOf = async (headers: Record<string, string>) => ((await get(port, headers)).body as typeof F1).downstream.grpc;
    // orders has no feature1 copy: its base routes the call by the key it received over HTTP.
    t.same(await inventoryOf(host('feature1')), { service: 'inventory', lane: 'feature1' }, 'feature1 crosses the gRPC hop into the inventory copy');
    t.same(await inventoryOf({ ...host(), baggage: 'uber-ctx-key=feature1' }), { service: 'inventory', lane: 'feature1' }, 'by baggage as well');
    // orders@feature2 is a copy, inventory has none for feature2.
    t.same(await inventoryOf(host('feature2')), { service: 'inventory', lane: 'base' }, 'feature2: base inventory after the orders copy');
    t.same(await inventoryOf(host()), { service: 'inventory', lane: 'base' }, 'no key: base');
    t.same(await inventoryOf({ ...host(), 'uber-ctx-key': 'feature9' }), { service: 'inventory', lane: 'base' }, 'unknown key: base');

    // The same routing by a sidecar: web@base's outbound listener takes gRPC as well.
    const outbound = fleet.plan.instances.find((i) => i.service === 'web' && i.lane === 'base')!.sidecar!.outbound;
    const f1 = await reserveVia(outbound, { 'uber-ctx-key': 'feature1' });
    t.same(f1.reply, { service: 'inventory', lane: 'feature1' }, 'a sidecar routes a gRPC call with feature1 to the copy');
    // Each hop replaces the lane header of the one behind it: the routing sidecar's is the one left.
    t.same(f1.lanes, ['feature1'], 'x-devstack-lane in the response metadata');
    const base = await reserveVia(outbound, {});
    t.same(base.reply, { service: 'inventory', lane: 'base' }, 'and without a key to base');
    t.same(base.lanes, ['base']);
  });

  t.test('every carrier', async (t) => {
    await expect(t, { ...host(), 'uber-ctx-key': 'feature2' }, F2, 'plain header');
    await expect(t, { ...host(), baggage: 'userId=42,uber-ctx-key=feature1;p=1,other=x' }, F1, 'W3C baggage entry');
    await expect(t, { ...host(), 'uberctx-uber-ctx-key': 'feature2' }, F2, 'Jaeger baggage header');
    await expect(t, host('feature2'), F2, 'first Host label');
  });

  t.test('invalid and unknown keys go to base', async (t) => {
    await expect(t, { ...host(), 'uber-ctx-key': 'Feature_1!' }, BASE, 'malformed header');
    await expect(t, { ...host(), 'uber-ctx-key': 'feature1, feature2' }, BASE, 'conflicting values');
    await expect(t, { ...host(), 'uber-ctx-key': 'feature9' }, BASE, 'unknown key by header');
    await expect(t, host('feature9'), BASE, 'unknown key by Host');
  });

  const publish = async (t: Test, headers: Record<string, string>): Promise<Published> => {
    const a = await get(port, headers, 'POST', '/events');
    t.equal(a.status, 200, `POST /events ${JSON.stringify(headers)}: 200${a.status === 200 ? '' : ` ${JSON.stringify(a.body)}`}`);
    return a.body as Published;
  };

  t.test('the async hop: web publishes to SQS, the worker lane the key picks processes it', async (t) => {
    t.same(expectedEvent('feature1'), { publisher: 'feature1', worker: 'feature1' }, 'the plan: feature1 has a worker copy');
    t.same(expectedEvent('feature2'), { publisher: 'base', worker: 'base' }, 'feature2 has none');
    const cases: [Record<string, string>, { publisher: string; worker: string; reason: string; key: string | null }, string][] = [
      [host('feature1'), { publisher: 'feature1', worker: 'feature1', reason: 'match', key: 'feature1' }, 'feature1 by Host: the worker copy'],
      [{ ...host(), 'uber-ctx-key': 'feature1' }, { publisher: 'feature1', worker: 'feature1', reason: 'match', key: 'feature1' }, 'feature1 by header: the worker copy'],
      [host(), { publisher: 'base', worker: 'base', reason: 'no-key', key: null }, 'no key: base'],
      [{ ...host(), 'uber-ctx-key': 'feature2' }, { publisher: 'base', worker: 'base', reason: 'no-copy', key: 'feature2' }, 'feature2, a key with no worker copy: base'],
      [{ ...host(), 'uber-ctx-key': 'feature9' }, { publisher: 'base', worker: 'base', reason: 'unknown-key', key: 'feature9' }, 'an unknown key: base'],
    ];
    // Both lanes read the one queue, and either may receive any event first: without the lane
    // decision an event goes to whichever receives it, so a few rounds of every case cannot all
    // come out right.
    for (let round = 1; round <= 4; round++) {
      for (const [headers, want, what] of cases) {
        const p = await publish(t, headers);
        t.match(p, { service: 'web', lane: want.publisher, published: { queue: 'demo-events', key: want.key }, processed: { service: 'worker', lane: want.worker, reason: want.reason } }, `${what} (round ${round})`);
      }
    }
  });

  t.test("a worker copy marked not ready in the registry: its events go to base, and back once it is ready", async (t) => {
    const original = await readFile(fleet.registryPath, 'utf8');
    const setReady = async (ready: boolean) => {
      const doc = JSON.parse(original) as { services: { worker: { features: { feature1: { ready: boolean } } } } };
      doc.services.worker.features.feature1.ready = ready;
      // Written whole and renamed, as an editor saves: no worker reads a half-written file.
      await writeFile(`${fleet.registryPath}.tmp`, JSON.stringify(doc));
      await rename(`${fleet.registryPath}.tmp`, fleet.registryPath);
    };
    /** Publishes feature1 events until `n` in a row come back from `lane` (each worker reads the file on its own); bounded. */
    const until = async (lane: string, reason: string, n = 3, limit = 200): Promise<boolean> => {
      let row = 0;
      for (let i = 0; i < limit && row < n; i++) {
        const p = await publish(t, { ...host(), 'uber-ctx-key': 'feature1' });
        row = p.processed.lane === lane && p.processed.reason === reason ? row + 1 : 0;
      }
      return row === n;
    };
    await setReady(false);
    t.ok(await until('base', 'not-ready'), 'not ready: feature1 events are processed by base');
    await setReady(true);
    t.ok(await until('feature1', 'match'), 'ready again: by the copy');
  });

  t.test('a failing downstream call is reported with its status and code', async (t) => {
    const payments = fleet.processes.find((p) => p.name === 'payments@feature1');
    t.ok(payments);
    process.kill(payments!.pid, 'SIGTERM');
    t.match(await fleet.failure, /payments@feature1 exited/, 'the fleet notices');
    const a = await get(port, host('feature1'));
    t.equal(a.status, 502);
    t.match(a.body, {
      service: 'web',
      lane: 'feature1',
      downstream: { service: 'orders', lane: 'base', status: 502, grpc: { service: 'inventory', lane: 'feature1' }, downstream: { status: 502, error: 'DEVSTACK_UPSTREAM_UNREACHABLE' } },
    });

    // The app behind inventory@feature1's sidecar goes; the sidecar answers the gRPC call itself.
    const inventory = fleet.processes.find((p) => p.name === 'inventory@feature1');
    t.ok(inventory);
    process.kill(inventory!.pid, 'SIGTERM');
    await inventory!.exited;
    const b = await get(port, host('feature1'));
    t.equal(b.status, 502);
    t.match(b.body, {
      service: 'web',
      lane: 'feature1',
      downstream: { service: 'orders', lane: 'base', status: 502, grpc: { status: null, grpc: 'UNAVAILABLE', error: 'DEVSTACK_UPSTREAM_UNREACHABLE' } },
    });
    await expect(t, host(), BASE, 'other lanes still answer');
  });

  t.test('stop leaves no process, port or file behind', async (t) => {
    await fleet.stop();
    for (const p of fleet.processes) {
      t.notOk(alive(p.pid), `${p.name} is gone`);
      for (const port of p.ports) t.ok(await refused(port), `${p.name}: nothing listens on ${port}`);
    }
    t.notOk(existsSync(fleet.dir), 'temporary folder removed');
  });
});

t.test('a port in use: a clear error, nothing started', async (t) => {
  const blocker = net.createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => blocker.close(() => resolve())));
  const { port } = blocker.address() as net.AddressInfo;
  await t.rejects(startFleet({ port }), new FleetError('DEVSTACK_DEMO_PORT_IN_USE', `port ${port} on 127.0.0.1 is already in use; stop what uses it, or pick another port with --port N (or DEVSTACK_DEMO_PORT=N)`));
});

const START = fileURLToPath(new URL('../src/start.ts', import.meta.url));

function run(args: string[], onStdout?: (text: string, signal: (s: NodeJS.Signals) => void) => void): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [START, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: '' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
      onStdout?.(stdout, (s) => child.kill(s));
    });
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

t.test('the npm start command', async (t) => {
  const help = await run(['--help']);
  t.equal(help.code, 0);
  t.match(help.stdout, /Usage: npm start/);

  const bad = await run(['--port', 'eighty']);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /--port must be a number.*DEVSTACK_DEMO_BAD_OPTION/);

  let edge = 0;
  let answer: Answer | undefined;
  const demo = await run(['--port', '0'], (stdout, signal) => {
    const m = /ready on http:\/\/example\.localhost:(\d+)\//.exec(stdout);
    if (m === null || edge !== 0) return;
    edge = Number(m[1]);
    void get(edge, { host: `feature1.${DOMAIN}:${edge}` }).then(
      (a) => (answer = a),
      () => undefined,
    ).finally(() => signal('SIGINT'));
  });
  t.equal(demo.code, 0, 'SIGINT: exit 0');
  t.match(demo.stdout, /curl -s http:\/\/feature1\.example\.localhost:\d+\//, 'prints the curl table');
  t.match(demo.stdout, /stopped; nothing left running/);
  t.same(answer?.body, F1);
  t.ok(await refused(edge), 'the edge port is free again');
});
