/*
 * Memory of a `--registry k8s` sidecar through a 410 storm, measured (never asserted in tests):
 *
 *   node packages/registry-kubernetes/bench/storm.ts [--objects 10000] [--seconds 30] [--heap 128] [--sidecar path/to/cli.js]
 *
 * A fake API server (@devstack/kube-fake, in this process, on 127.0.0.1) holds N Services and N
 * EndpointSlices; the sidecar (its own process, `--max-old-space-size=HEAP --trace-gc`) syncs,
 * then every watch is answered 410 for SECONDS. Prints whether the sidecar survived, its peak
 * heap (the largest heap before a collection, from --trace-gc) and peak RSS (VmHWM), and how many
 * list requests the storm drew.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startFakeApiServer } from '@devstack/kube-fake';

const { values } = parseArgs({
  options: {
    objects: { type: 'string', default: '10000' },
    seconds: { type: 'string', default: '30' },
    heap: { type: 'string', default: '128' },
    sidecar: { type: 'string', default: fileURLToPath(new URL('../../sidecar/dist/cli.js', import.meta.url)) },
  },
});
const N = Number(values.objects);
const NS = 'shop';

const api = await startFakeApiServer({ namespaces: [NS] });
for (let i = 0; i < N; i++) {
  const name = `svc-${i}`;
  api.create({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: NS, labels: { 'devstack.io/service': name } }, spec: { ports: [{ name: 'http', port: 80 }] } });
  api.create({
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: `${name}-x`, namespace: NS, labels: { 'kubernetes.io/service-name': name } },
    addressType: 'IPv4',
    endpoints: [{ addresses: [`10.1.${i >> 8}.${i & 255}`], conditions: { ready: true } }],
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
  });
}
const kubeconfig = await api.kubeconfig(join(mkdtempSync(join(tmpdir(), 'devstack-storm-')), 'kubeconfig'));
let lists = 0;
let watches = 0;
api.on('request', (r: { watch: boolean; query: Record<string, string> }) => {
  if (r.watch) watches++;
  else if (r.query['continue'] === undefined) lists++;
});

const child = spawn(process.execPath, [`--max-old-space-size=${values.heap}`, '--trace-gc', values.sidecar, '--registry', 'k8s', '--kubeconfig', kubeconfig, '--namespace', NS, '--targets', 'endpoints', '--outbound-port', '0', '--admin-port', '0', '--admin-host', '127.0.0.1', '--log-level', 'warn'], {
  stdio: ['ignore', 'pipe', 'pipe'],
});
let peakHeap = 0;
/** The largest heap a full collection left: what was live. */
let peakLive = 0;
let exited: string | undefined;
let logLines = 0;
let stderr = '';
const onLine = (line: string) => {
  // "[pid:0x...]  1234 ms: Mark-Compact 95.3 (130.2) -> 60.1 (128.0) MB, ..."
  const gc = /: (Scavenge|Mark-Compact|Mark-sweep|Minor Mark-Sweep)[^\d]*([\d.]+) \(([\d.]+)\) -> ([\d.]+)/.exec(line);
  if (gc) {
    peakHeap = Math.max(peakHeap, Number(gc[2]));
    if (gc[1] === 'Mark-Compact') peakLive = Math.max(peakLive, Number(gc[4]));
  }
  else if (line.startsWith('{')) logLines++;
};
let buffered = '';
child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
  buffered += chunk;
  let nl: number;
  while ((nl = buffered.indexOf('\n')) !== -1) {
    onLine(buffered.slice(0, nl));
    buffered = buffered.slice(nl + 1);
  }
});
child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr = (stderr + chunk).slice(-2000)));
child.once('exit', (code, signal) => (exited = `exit ${code ?? signal}`));
const status = () => readFileSync(`/proc/${child.pid}/status`, 'utf8');
const kib = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status())?.[1] ?? 0) / 1024;

const t0 = performance.now();
while (watches < 2 && exited === undefined) await new Promise((resolve) => setTimeout(resolve, 50));
const synced = performance.now() - t0;
const beforeStorm = { heap: peakHeap, live: peakLive, rss: exited ? 0 : kib('VmHWM') };
process.stdout.write(`synced ${N} Services + ${N} EndpointSlices in ${(synced / 1000).toFixed(1)} s; peak heap ${beforeStorm.heap.toFixed(1)} MB (live after a full GC ${beforeStorm.live.toFixed(1)} MB), peak RSS ${beforeStorm.rss.toFixed(0)} MiB\n`);
const listsBefore = lists;
api.failNext(Infinity, 'gone', { match: (r) => r.watch });
api.closeWatches();
const end = performance.now() + Number(values.seconds) * 1000;
let rss = 0;
while (performance.now() < end && exited === undefined) {
  await new Promise((resolve) => setTimeout(resolve, 200));
  if (exited === undefined) rss = Math.max(rss, kib('VmHWM'));
}
const lasted = (performance.now() - (end - Number(values.seconds) * 1000)) / 1000;
process.stdout.write(
  `410 storm for ${lasted.toFixed(1)} s: ${exited === undefined ? 'survived' : `died (${exited}): ${stderr.split('\n').find((l) => /heap|FATAL|Error/.test(l)) ?? stderr.slice(-300)}`}; ` +
    `peak heap ${peakHeap.toFixed(1)} MB (live ${peakLive.toFixed(1)} MB), peak RSS ${rss.toFixed(0)} MiB; ${lists - listsBefore} relists (${((lists - listsBefore) / lasted).toFixed(1)}/s), ${logLines} log lines\n`,
);
child.kill('SIGTERM');
if (exited === undefined) await new Promise((resolve) => child.once('exit', resolve));
await api.close();
