/*
 * One devstack-relay in front of the fake API server, S services x C copies each (S * (C + 1)
 * Services and as many EndpointSlices), fanned out to N concurrent subscriber streams on loopback:
 *
 * - a watch event to visible at the subscribers (p50, p99 over every stream and change, and the
 *   time until the last stream has it);
 * - bytes per change: one per-service change against the whole snapshot;
 * - the relay's RSS and CPU, at rest and through the changes;
 * - the time for every stream to resync after the relay is killed and started again;
 * - what the API server saw: lists and watches, all the relay's.
 *
 *   npm run relay -w @devstack/bench -- [--services 1000] [--copies 10] [--subscribers 2000] [--changes 50]
 *
 * The API server is in this process; the relay is the real command in a child process; the
 * subscribers are two more children (half each), so three processes share this machine's cores.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startFakeApiServer } from '@devstack/kube-fake';
import { cpuTime, memory } from './procstat.ts';

const { values } = parseArgs({
  options: {
    services: { type: 'string', default: '1000' },
    copies: { type: 'string', default: '10' },
    subscribers: { type: 'string', default: '2000' },
    changes: { type: 'string', default: '50' },
    gap: { type: 'string', default: '200' },
  },
});
const S = Number(values.services);
const C = Number(values.copies);
const N = Number(values.subscribers);
const CHANGES = Number(values.changes);
const GAP_MS = Number(values.gap);
const NS = 'bench';
const CLI = fileURLToPath(new URL('../../packages/relay/bin/devstack-relay.cjs', import.meta.url));
const SUBSCRIBER = fileURLToPath(new URL('./relay-subscribers.ts', import.meta.url));
const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function objects(service: string, key: string | undefined, address: string) {
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
      endpoints: [{ addresses: [address], conditions: { ready: true } }],
      ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    },
  ] as const;
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((s.length * p) / 100))]!;
}

const ms = (x: number) => `${x.toFixed(1)} ms`;
const mib = (kib: number) => `${(kib / 1024).toFixed(1)} MiB`;

interface Relay {
  proc: ChildProcess;
  port: number;
  adminPort: number;
  epoch: string;
}

function startRelay(kubeconfig: string, port: number): Promise<Relay> {
  const proc = spawn(process.execPath, [CLI, '--kubeconfig', kubeconfig, '--namespace', NS, '--targets', 'endpoints', '--port', String(port), '--admin-port', '0', '--host', '127.0.0.1', '--admin-host', '127.0.0.1'], { stdio: ['ignore', 'ignore', 'pipe'] });
  return new Promise((resolve, reject) => {
    let text = '';
    proc.stderr!.setEncoding('utf8').on('data', (c: string) => {
      text += c;
      const line = text.split('\n').find((l) => l.includes('"listening"'));
      if (line !== undefined) {
        const entry = JSON.parse(line) as { port: number; adminPort: number; epoch: string };
        resolve({ proc, port: entry.port, adminPort: entry.adminPort, epoch: entry.epoch });
      }
    });
    proc.once('exit', (code) => reject(new Error(`relay exited ${code}: ${text}`)));
  });
}

async function waitReady(adminPort: number): Promise<void> {
  for (;;) {
    const res = await fetch(`http://127.0.0.1:${adminPort}/readyz`).catch(() => undefined);
    if (res?.status === 200) return;
    await res?.text();
    await sleep(20);
  }
}

async function metrics(adminPort: number): Promise<Map<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^(devstack_relay_[a-z_]+(?:\{[^}]*\})?) ([0-9.e+]+)$/.exec(line);
    if (m) out.set(m[1]!, Number(m[2]));
  }
  return out;
}

function once<T>(child: ChildProcess, type: string): Promise<T> {
  return new Promise((resolve) => {
    const on = (m: { type: string }) => {
      if (m.type !== type) return;
      child.off('message', on);
      resolve(m as T);
    };
    child.on('message', on);
  });
}

async function main(): Promise<void> {
  const api = await startFakeApiServer({ namespaces: [NS] });
  let count = 0;
  for (let i = 0; i < S; i++) {
    for (let k = -1; k < C; k++) {
      for (const o of objects(`svc${i}`, k < 0 ? undefined : `f${k}`, `10.${(i >> 8) & 255}.${i & 255}.${k + 2}`)) api.create(o as never);
      count++;
    }
  }
  const kubeconfig = await api.kubeconfig(join(mkdtempSync(join(tmpdir(), 'devstack-relay-')), 'kubeconfig'));
  console.log(`# devstack-relay: ${S} services x ${C} copies = ${count} Services and EndpointSlices, ${N} subscriber streams (node ${process.version})`);

  const t0 = now();
  let relay = await startRelay(kubeconfig, 0);
  await waitReady(relay.adminPort);
  console.log(`relay start to ready (first sync of ${count} Services and slices): ${ms(now() - t0)}`);
  const idle = memory(relay.proc.pid!);
  console.log(`relay RSS, synced, no subscriber: ${mib(idle.rssKiB)}`);

  const halves = [Math.ceil(N / 2), Math.floor(N / 2)].filter((n) => n > 0);
  const fanStart = now();
  const cpuFan = cpuTime(relay.proc.pid!);
  const children = halves.map((n) => fork(SUBSCRIBER, [String(relay.port), NS, String(n)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
  await Promise.all(children.map((c) => once(c, 'ready')));
  const fanCpu = cpuTime(relay.proc.pid!);
  console.log(`first snapshot to all ${N} streams (connections included): ${ms(now() - fanStart)}, relay CPU ${((fanCpu.user + fanCpu.system - cpuFan.user - cpuFan.system) * 1000).toFixed(0)} ms`);
  const before = await metrics(relay.adminPort);
  const snapshotBytes = (before.get('devstack_relay_sent_bytes_total{type="snapshot"}') ?? 0) / (before.get('devstack_relay_messages_total{type="snapshot"}') ?? 1);
  console.log(`relay RSS with ${N} streams: ${mib(memory(relay.proc.pid!).rssKiB)}`);

  // Changes: one base endpoint of one service moves to an address that names the change.
  const cpu0 = cpuTime(relay.proc.pid!);
  const sentAt = new Map<number, number>();
  for (let seq = 0; seq < CHANGES; seq++) {
    const i = seq % S;
    const [, slice] = objects(`svc${i}`, undefined, `10.200.${seq >> 8}.${seq & 255}`);
    const current = api.get({ apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', name: `svc${i}-x`, namespace: NS }) as { metadata: { resourceVersion: string } };
    sentAt.set(seq, now());
    api.update({ ...slice, metadata: { ...slice.metadata, resourceVersion: current.metadata.resourceVersion } } as never);
    await sleep(GAP_MS);
  }
  await sleep(1000);
  const cpu1 = cpuTime(relay.proc.pid!);
  const after = await metrics(relay.adminPort);
  const loaded = memory(relay.proc.pid!);
  const reports = await Promise.all(
    children.map((c) => {
      const r = once<{ arrivals: Array<[number, number[]]> }>(c, 'report');
      c.send({ type: 'report' });
      return r;
    }),
  );
  const latencies: number[] = [];
  const lastAt: number[] = [];
  let missing = 0;
  for (let seq = 0; seq < CHANGES; seq++) {
    const all = reports.flatMap((r) => r.arrivals.find(([s]) => s === seq)?.[1] ?? []);
    missing += N - all.length;
    const lat = all.map((at) => at - sentAt.get(seq)!);
    latencies.push(...lat);
    if (lat.length > 0) lastAt.push(Math.max(...lat));
  }
  const deltas = (after.get('devstack_relay_messages_total{type="delta"}') ?? 0) - (before.get('devstack_relay_messages_total{type="delta"}') ?? 0);
  const deltaBytes = ((after.get('devstack_relay_sent_bytes_total{type="delta"}') ?? 0) - (before.get('devstack_relay_sent_bytes_total{type="delta"}') ?? 0)) / Math.max(1, deltas);
  console.log(`\n${CHANGES} changes, ${GAP_MS} ms apart, one service each:`);
  console.log(`  event to visible at a stream: p50 ${ms(percentile(latencies, 50))}, p99 ${ms(percentile(latencies, 99))}, max ${ms(Math.max(...latencies))} (${latencies.length} samples, ${missing} missing)`);
  console.log(`  event to visible at all ${N}: p50 ${ms(percentile(lastAt, 50))}, p99 ${ms(percentile(lastAt, 99))}`);
  console.log(`  bytes per change per stream: delta ${deltaBytes.toFixed(0)} B, whole snapshot ${snapshotBytes.toFixed(0)} B (${(snapshotBytes / deltaBytes).toFixed(0)}x); per change to all ${N}: ${((deltaBytes * N) / 1024).toFixed(0)} KiB against ${((snapshotBytes * N) / 2 ** 20).toFixed(0)} MiB`);
  console.log(`  relay CPU through the changes: ${((cpu1.user + cpu1.system - cpu0.user - cpu0.system) * 1000).toFixed(0)} ms for ${CHANGES} changes (${(((cpu1.user + cpu1.system - cpu0.user - cpu0.system) * 1000) / CHANGES).toFixed(1)} ms a change)`);
  console.log(`  relay RSS ${mib(loaded.rssKiB)}, peak ${mib(loaded.peakKiB)}`);

  // A relay killed and started again on its port: every stream reconnects and gets a snapshot.
  children.forEach((c) => c.send({ type: 'killed' }));
  await sleep(50);
  const port = relay.port;
  relay.proc.kill('SIGKILL');
  await new Promise((resolve) => relay.proc.once('exit', resolve));
  const restart = now();
  const resynced = children.map((c) => once<{ times: number[] }>(c, 'resynced'));
  relay = await startRelay(kubeconfig, port);
  const listening = now();
  await waitReady(relay.adminPort);
  const ready = now();
  const times = (await Promise.all(resynced)).flatMap((r) => r.times).map((at) => at - restart);
  console.log(`\nrelay killed and started again: listening after ${ms(listening - restart)}, ready (synced) after ${ms(ready - restart)}`);
  console.log(`  every stream resynced (a full snapshot each, new epoch) after ${ms(Math.max(...times))}; p50 ${ms(percentile(times, 50))}; from ready: ${ms(Math.max(...times) - (ready - restart))}`);
  console.log(`  relay RSS after the resync ${mib(memory(relay.proc.pid!).rssKiB)}, peak ${mib(memory(relay.proc.pid!).peakKiB)}`);

  const reads = api.requests.filter((r) => r.method === 'GET');
  const lists = reads.filter((r) => !r.watch).length;
  const watches = reads.filter((r) => r.watch).length;
  const other = reads.filter((r) => !/\/namespaces\/bench\/(services|endpointslices)$/.test(r.path)).length;
  console.log(`\nAPI server: ${lists} lists (pages included) and ${watches} watches over both relay runs, ${other} other requests; none from the ${N} subscribers`);

  children.forEach((c) => c.send({ type: 'exit' }));
  relay.proc.kill('SIGTERM');
  await api.close();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
