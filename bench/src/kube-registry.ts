/*
 * The Kubernetes registry at scale: snapshot rebuild time and retained memory for S services with
 * C feature copies each (S * (C + 1) Services and as many EndpointSlices), the time from a watch
 * event to the first request the sidecar routes by it, and the sidecar's memory with that registry.
 *
 *   npm run kube -w @devstack/bench -- [--services 1000] [--copies 10] [--events 40]
 *
 * The API server is the fake one (@devstack/kube-fake) in this process; the sidecar is the real
 * command in a child process, with the image's Node flags, watching it with --targets endpoints.
 */
import { spawn } from 'node:child_process';
import { Agent, createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { buildSnapshot } from '@devstack/core';
import { Fleet, buildModel, type EndpointSliceObject, type ServiceObject } from '@devstack/registry-kubernetes';
import { startFakeApiServer } from '@devstack/kube-fake';
import { describeRuntime, parseRuntime, runtimeEnv, type Runtime } from './runtime.ts';

const { values } = parseArgs({ options: { services: { type: 'string', default: '1000' }, copies: { type: 'string', default: '10' }, events: { type: 'string', default: '40' } } });
const S = Number(values.services);
const C = Number(values.copies);
const EVENTS = Number(values.events);
const NS = 'bench';
const CLI = fileURLToPath(new URL('../../packages/sidecar/bin/devstack-sidecar.cjs', import.meta.url));
// The image's runtime settings (docker/sidecar.Dockerfile).
const IMAGE: Runtime = parseRuntime('image');

function objects(service: string, key: string | undefined, port: number): [ServiceObject & { apiVersion: string; kind: string }, EndpointSliceObject & { apiVersion: string; kind: string }] {
  const name = key === undefined ? service : `${service}-${key}`;
  const labels: Record<string, string> = { 'devstack.io/service': service };
  if (key !== undefined) labels['devstack.io/feature'] = key;
  return [
    { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: NS, labels }, spec: { ports: [{ name: 'http', port: 80 }] } },
    {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: `${name}-x`, namespace: NS, labels: { 'kubernetes.io/service-name': name } },
      addressType: 'IPv4',
      endpoints: [{ addresses: ['127.0.0.1'], conditions: { ready: true } }],
      ports: [{ name: 'http', port, protocol: 'TCP' }],
    },
  ];
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const fmt = (ms: number) => `${ms.toFixed(1)} ms`;

async function main(): Promise<void> {
  const upstream = createServer((_req, res) => res.end('ok'));
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const port = (upstream.address() as AddressInfo).port;
  const services: ServiceObject[] = [];
  const slices: EndpointSliceObject[] = [];
  for (let i = 0; i < S; i++) {
    for (let k = -1; k < C; k++) {
      const [svc, slice] = objects(`svc${i}`, k < 0 ? undefined : `f${k}`, port);
      services.push(svc);
      slices.push(slice);
    }
  }
  console.log(`# Kubernetes registry: ${S} services x ${C} copies = ${services.length} Services, ${slices.length} EndpointSlices (node ${process.version})`);

  // 1. Rebuild: the whole model and snapshot from the watched objects, as the source does per change.
  const times: Array<{ model: number; snapshot: number }> = [];
  for (let r = 0; r < 7; r++) {
    const t0 = performance.now();
    const model = buildModel(services, slices, { targets: 'endpoints', clusterDomain: 'cluster.local' });
    const t1 = performance.now();
    buildSnapshot(model.input);
    times.push({ model: t1 - t0, snapshot: performance.now() - t1 });
  }
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const before = process.memoryUsage().heapUsed;
  const kept = buildSnapshot(buildModel(services, slices, { targets: 'endpoints', clusterDomain: 'cluster.local' }).input);
  gc?.();
  const retained = process.memoryUsage().heapUsed - before;
  console.log(`rebuild (median of 7): model ${fmt(median(times.map((x) => x.model)))}, snapshot ${fmt(median(times.map((x) => x.snapshot)))}, total ${fmt(median(times.map((x) => x.model + x.snapshot)))}`);
  console.log(`snapshot retained: ${gc ? `${(retained / 2 ** 20).toFixed(1)} MiB` : 'run with --expose-gc to measure'} (${kept.services.size} services)`);

  // 1b. What the source does per watch event: only the touched service is rebuilt.
  const fleet = new Fleet({ targets: 'endpoints', clusterDomain: 'cluster.local' });
  fleet.reset(services, slices);
  let snapshot = fleet.build(undefined, { version: 1 }).snapshot;
  const increments: number[] = [];
  for (let e = 0; e < 50; e++) {
    const [svc] = objects(`svc${e}`, `inc${e}`, port);
    const t0 = performance.now();
    fleet.service({ full: false, object: svc, previous: undefined });
    snapshot = fleet.build(snapshot, { version: e + 2 }).snapshot;
    increments.push(performance.now() - t0);
  }
  console.log(`one watch event, incremental rebuild (50 events): median ${fmt(median(increments))}, worst ${fmt(Math.max(...increments))}`);

  // 2. The sidecar watching a fake API server that holds the whole fleet.
  const api = await startFakeApiServer({ namespaces: [NS] });
  for (let i = 0; i < services.length; i++) {
    api.create(services[i] as never);
    api.create(slices[i] as never);
  }
  const kubeconfig = await api.kubeconfig(join(mkdtempSync(join(tmpdir(), 'devstack-kube-')), 'kubeconfig'));
  const started = performance.now();
  const child = spawn(process.execPath, [...IMAGE.nodeArgs, CLI, '--registry', 'k8s', '--kubeconfig', kubeconfig, '--namespace', NS, '--targets', 'endpoints', '--outbound-port', '0', '--admin-port', '0', '--admin-host', '127.0.0.1'], {
    env: runtimeEnv(IMAGE),
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const ports: Record<string, number> = {};
  await new Promise<void>((resolve, reject) => {
    let buffered = '';
    child.stdout!.setEncoding('utf8').on('data', (c: string) => {
      buffered += c;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) !== -1) {
        const entry = JSON.parse(buffered.slice(0, nl)) as { msg: string; listener?: string; port?: number };
        buffered = buffered.slice(nl + 1);
        if (entry.msg === 'listening' && entry.listener) ports[entry.listener] = entry.port!;
        if (entry.msg === 'ready') resolve();
      }
    });
    child.once('exit', (code) => reject(new Error(`sidecar exited ${code}`)));
  });
  const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1]) / 1024;
  console.log(`sidecar: first full sync and ready in ${fmt(performance.now() - started)}; RSS ${rss().toFixed(0)} MiB (the image's ${describeRuntime(IMAGE)})`);

  // 3. Watch event -> first request routed by it: a new copy appears; requests with its key poll
  //    the sidecar until one is answered from the copy's lane.
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const lane = (key: string): Promise<string | undefined> =>
    new Promise((resolve, reject) => {
      request({ host: '127.0.0.1', port: ports['outbound'], path: '/', headers: { host: 'svc0', 'uber-ctx-key': key }, agent }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.headers['x-devstack-lane'] as string | undefined));
      })
        .on('error', reject)
        .end();
    });
  const delays: number[] = [];
  for (let e = 0; e < EVENTS; e++) {
    const key = `new${e}`;
    const [svc, slice] = objects('svc0', key, port);
    api.create(slice as never);
    const t0 = performance.now();
    api.create(svc as never);
    while ((await lane(key)) !== key) {
      if (performance.now() - t0 > 10_000) throw new Error(`event ${e} was not routed within 10 s`);
    }
    delays.push(performance.now() - t0);
  }
  console.log(`watch event -> first routed request, ${EVENTS} events: median ${fmt(median(delays))}, worst ${fmt(Math.max(...delays))}`);
  console.log(`sidecar RSS after the events: ${rss().toFixed(0)} MiB`);
  agent.destroy();
  child.kill('SIGTERM');
  await new Promise((resolve) => child.once('exit', resolve));
  await api.close();
  upstream.close();
}

main().catch((error: Error) => {
  console.error(error.stack ?? error.message);
  process.exitCode = 1;
});
