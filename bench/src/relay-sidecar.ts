/*
 * The sidecar's memory in each registry mode, same fleet, same run: a registry file, its own watch
 * of the API server (--registry k8s), and a devstack-relay's stream (--registry http://RELAY).
 * Idle RSS once ready, and RSS after a short load through the outbound listener.
 *
 *   npm run relay-sidecar -w @devstack/bench -- [--services 1000] [--copies 10] [--seconds 10]
 *
 * The API server is the fake one in this process; the relay and each sidecar are the real commands
 * (the sidecar with the image's Node flags), one sidecar at a time.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { startFakeApiServer } from '@devstack/kube-fake';
import { memory } from './procstat.ts';
import { describeRuntime, parseRuntime, runtimeEnv } from './runtime.ts';

const { values } = parseArgs({ options: { services: { type: 'string', default: '1000' }, copies: { type: 'string', default: '10' }, seconds: { type: 'string', default: '10' } } });
const S = Number(values.services);
const C = Number(values.copies);
const SECONDS = Number(values.seconds);
const NS = 'bench';
const SIDECAR = fileURLToPath(new URL('../../packages/sidecar/bin/devstack-sidecar.cjs', import.meta.url));
const RELAY = fileURLToPath(new URL('../../packages/relay/bin/devstack-relay.cjs', import.meta.url));
const IMAGE = parseRuntime('image');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const mib = (kib: number) => `${(kib / 1024).toFixed(0)} MiB`;

function lines(proc: ChildProcess, stream: 'stdout' | 'stderr', on: (entry: Record<string, unknown>) => void): void {
  let buffered = '';
  proc[stream]!.setEncoding('utf8').on('data', (c: string) => {
    buffered += c;
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      try {
        on(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // not a log line
      }
    }
  });
}

async function sidecar(mode: string, args: string[], env: Record<string, string>): Promise<void> {
  const proc = spawn(process.execPath, [...IMAGE.nodeArgs, SIDECAR, ...args, '--outbound-port', '0', '--admin-port', '0', '--admin-host', '127.0.0.1'], { env: { ...runtimeEnv(IMAGE), ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  let outbound = 0;
  await new Promise<void>((resolve, reject) => {
    lines(proc, 'stdout', (entry) => {
      if (entry['msg'] === 'listening' && entry['listener'] === 'outbound') outbound = entry['port'] as number;
      if (entry['msg'] === 'ready') resolve();
    });
    proc.once('exit', (code) => reject(new Error(`sidecar (${mode}) exited ${code}`)));
  });
  await sleep(2000);
  const idle = memory(proc.pid!);
  const result = await autocannon({ url: `http://127.0.0.1:${outbound}/`, headers: { host: 'svc1', 'uber-ctx-key': 'f3' }, connections: 32, duration: SECONDS });
  const loaded = memory(proc.pid!);
  console.log(`${mode.padEnd(8)} idle RSS ${mib(idle.rssKiB)} (anon ${mib(idle.anonKiB)}); after ${SECONDS} s of load (${Math.round(result.requests.average)} req/s, ${result.non2xx + result.errors} errors): RSS ${mib(loaded.rssKiB)}, peak ${mib(loaded.peakKiB)}`);
  proc.kill('SIGTERM');
  await new Promise((resolve) => proc.once('exit', resolve));
}

async function main(): Promise<void> {
  const upstream = createServer((_req, res) => res.end('ok'));
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const port = (upstream.address() as AddressInfo).port;
  const api = await startFakeApiServer({ namespaces: [NS] });
  const registry: Record<string, { base: string; features: Record<string, string> }> = {};
  for (let i = 0; i < S; i++) {
    const features: Record<string, string> = {};
    for (let k = -1; k < C; k++) {
      const name = k < 0 ? `svc${i}` : `svc${i}-f${k}`;
      const labels: Record<string, string> = { 'devstack.io/service': `svc${i}` };
      if (k >= 0) {
        labels['devstack.io/feature'] = `f${k}`;
        features[`f${k}`] = `http://127.0.0.1:${port}`;
      }
      api.create({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: NS, labels }, spec: { ports: [{ name: 'http', port: 80 }] } } as never);
      api.create({ apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: `${name}-x`, namespace: NS, labels: { 'kubernetes.io/service-name': name } }, addressType: 'IPv4', endpoints: [{ addresses: ['127.0.0.1'], conditions: { ready: true } }], ports: [{ name: 'http', port, protocol: 'TCP' }] } as never);
    }
    registry[`svc${i}`] = { base: `http://127.0.0.1:${port}`, features };
  }
  const dir = mkdtempSync(join(tmpdir(), 'devstack-relay-sidecar-'));
  const kubeconfig = await api.kubeconfig(join(dir, 'kubeconfig'));
  const file = join(dir, 'registry.json');
  writeFileSync(file, JSON.stringify({ services: registry }));
  console.log(`# sidecar RSS by registry mode: ${S} services x ${C} copies (${S * (C + 1)} lanes), node ${process.version}, ${describeRuntime(IMAGE)}`);

  const relay = spawn(process.execPath, [RELAY, '--kubeconfig', kubeconfig, '--namespace', NS, '--targets', 'endpoints', '--port', '0', '--admin-port', '0', '--host', '127.0.0.1', '--admin-host', '127.0.0.1'], { stdio: ['ignore', 'ignore', 'pipe'] });
  const relayPort = await new Promise<number>((resolve) => lines(relay, 'stderr', (e) => e['msg'] === 'listening' && resolve(e['port'] as number)));

  await sidecar('file', ['--registry', file], {});
  await sidecar('k8s', ['--registry', 'k8s', '--kubeconfig', kubeconfig, '--namespace', NS, '--targets', 'endpoints'], {});
  // The namespace from the pod's environment (the relay source reads DEVSTACK_NAMESPACE, else POD_NAMESPACE).
  await sidecar('relay', ['--registry', `http://127.0.0.1:${relayPort}`], { POD_NAMESPACE: NS });
  console.log(`relay RSS (serving one sidecar): ${mib(memory(relay.pid!).rssKiB)}`);

  relay.kill('SIGTERM');
  await api.close();
  upstream.close();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
