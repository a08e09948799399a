/*
 * Large body buffers are freed once written (release.ts). Freeing one too early would send the
 * upstream or the client freed bytes, so every body here is random and checked by hash, through
 * the paths that hold a chunk longer: a client that reads slowly (the upstream paused mid-read), a
 * chunked answer, the last chunk sent with end(). Freeing is observed where it happens, on
 * ArrayBuffer.prototype.transfer, so a sidecar that stopped freeing fails here too.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, request, type IncomingMessage } from 'node:http';
import { connect as connectH2 } from 'node:http2';
import { connect, createServer as createTcpServer, type AddressInfo, type NetConnectOpts, type Socket } from 'node:net';
import t from 'tap';
import { markBody, releaseThrough, releaseWhenWritten, RELEASE_MIN_BYTES } from '@devstack/sidecar';
import { sidecar, upstream, writeRegistry, type Tap } from './helpers.ts';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

type Transfer = (this: ArrayBuffer, length?: number) => ArrayBuffer;
const proto = ArrayBuffer.prototype as ArrayBuffer & { transfer: Transfer };

/** Counts the buffers detached (and their bytes) while the test runs. */
function countFrees(t: Tap): { count: number; bytes: number } {
  const seen = { count: 0, bytes: 0 };
  const original = proto.transfer;
  proto.transfer = function (this: ArrayBuffer, length?: number) {
    seen.count++;
    seen.bytes += this.byteLength;
    return original.call(this, length);
  };
  t.teardown(() => {
    proto.transfer = original;
  });
  return seen;
}

/** Answers each request with a random body (chunked when asked) and the hash of what it received. */
async function hashingUpstream(t: Tap, sent: Map<string, string>) {
  return upstream(t, 'hashing', (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const size = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('size') ?? '0');
      const body = randomBytes(size);
      sent.set(req.headers['x-id'] as string, sha(body));
      const chunked = req.headers['x-chunked'] === '1';
      res.writeHead(200, { 'x-received': sha(Buffer.concat(chunks)), ...(chunked ? {} : { 'content-length': String(size) }) });
      if (!chunked) return res.end(body);
      // Pieces of several sizes, so one upstream read carries several chunks' views.
      for (let at = 0; at < size; ) {
        const n = Math.min(size - at, 7_000 + ((at / 7_000) % 5) * 11_000);
        res.write(body.subarray(at, (at += n)));
      }
      res.end();
    });
  });
}

interface Result {
  status: number;
  received: string | undefined;
  body: string;
}

function exchange(port: number, id: string, options: { size: number; upload?: Buffer; chunked?: boolean; slow?: boolean }): Promise<Result> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { host: 'files', 'x-id': id, ...(options.chunked ? { 'x-chunked': '1' } : {}) };
    const req = request({ host: '127.0.0.1', port, method: options.upload ? 'POST' : 'GET', path: `/?size=${options.size}`, headers, agent: false }, (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => {
        chunks.push(c);
        // A reader slower than the upstream: the sidecar pauses undici in the middle of its reads.
        if (options.slow) {
          res.pause();
          setImmediate(() => res.resume());
        }
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, received: res.headers['x-received'] as string | undefined, body: sha(Buffer.concat(chunks)) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(options.upload);
  });
}

t.test('bodies through the sidecar arrive intact while their buffers are freed as they are written', async (t) => {
  const sent = new Map<string, string>();
  const up = await hashingUpstream(t, sent);
  const s = await sidecar(t, writeRegistry(t.testdir(), { files: { base: [up.origin] } }));
  const port = s.addresses.outbound!.port;
  const frees = countFrees(t);
  const kinds = [
    { name: 'upload 1 MiB', size: 100, upload: 1 << 20 },
    { name: 'download 300 KiB', size: 300_000 },
    { name: 'chunked download 300 KiB', size: 300_000, chunked: true },
    { name: 'slow reader, 600 KiB', size: 600_000, slow: true },
    { name: 'slow reader, chunked 600 KiB', size: 600_000, slow: true, chunked: true },
  ];
  let uploaded = 0;
  let downloaded = 0;
  // Six at a time of every kind, twice over: exchanges share upstream connections and reads.
  for (let round = 0; round < 2; round++) {
    const runs = kinds.flatMap((kind) =>
      Array.from({ length: 6 }, async (_, i) => {
        const id = `${kind.name}#${round}.${i}`;
        const upload = kind.upload === undefined ? undefined : randomBytes(kind.upload);
        uploaded += upload?.length ?? 0;
        downloaded += kind.size;
        const result = await exchange(port, id, { size: kind.size, upload, chunked: kind.chunked, slow: kind.slow });
        return { id, result, expected: { received: sha(upload ?? Buffer.alloc(0)), body: sent.get(id) } };
      }),
    );
    for (const { id, result, expected } of await Promise.all(runs)) {
      t.equal(result.status, 200, `${id}: status`);
      t.equal(result.received, expected.received, `${id}: the upstream got the request body intact`);
      t.equal(result.body, expected.body, `${id}: the client got the response body intact`);
    }
  }
  // Most body bytes pass in buffers of 16 KiB and more; with freeing gone, none would be freed.
  t.ok(frees.bytes > (uploaded + downloaded) / 2, `freed ${frees.bytes} of ${uploaded + downloaded} body bytes (${frees.count} buffers)`);
});

t.test("an HTTP/2 client's response chunks are left to the collector, and arrive intact", async (t) => {
  const sent = new Map<string, string>();
  const up = await hashingUpstream(t, sent);
  const s = await sidecar(t, writeRegistry(t.testdir(), { files: { base: [up.origin] } }));
  const session = connectH2(`http://127.0.0.1:${s.addresses.outbound!.port}`);
  session.on('error', () => undefined);
  t.teardown(() => session.destroy());
  const frees = countFrees(t);
  const got = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const stream = session.request({ ':path': '/?size=600000', ':authority': 'files', 'x-id': 'h2' });
    const chunks: Buffer[] = [];
    let status = 0;
    stream.on('response', (headers) => (status = Number(headers[':status'])));
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => resolve({ status, body: sha(Buffer.concat(chunks)) }));
    stream.on('error', reject);
  });
  t.equal(got.status, 200);
  t.equal(got.body, sent.get('h2'), 'the body arrived intact');
  t.equal(frees.count, 0, 'no buffer of an HTTP/2 exchange was freed');
});

/** A connected pair of loopback sockets; closed at teardown. */
async function socketPair(t: Tap): Promise<[Socket, Socket]> {
  const server = createTcpServer();
  const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  // A large read buffer, so that a test can wait for all it sent to arrive before one read().
  // (net.Socket passes it on to its Duplex; Node's types leave it out.)
  const options: NetConnectOpts & { readableHighWaterMark: number } = { port: (server.address() as AddressInfo).port, host: '127.0.0.1', readableHighWaterMark: 1 << 20 };
  const client = connect(options);
  const peer = await accepted;
  await new Promise((resolve) => client.once('connect', resolve));
  t.teardown(() => {
    client.destroy();
    peer.destroy();
    server.close();
  });
  return [client, peer];
}

function received(socket: Socket, bytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let got = 0;
  return new Promise((resolve) => {
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      if ((got += c.length) >= bytes) resolve(Buffer.concat(chunks));
    });
  });
}

t.test('a marked request body chunk is freed once the upstream socket wrote it, nothing else is', async (t) => {
  const [client, peer] = await socketPair(t);
  releaseThrough(client);
  // A real request body: its chunks come from Node's HTTP parser.
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  const body = randomBytes(200_000);
  const arrived = new Promise<IncomingMessage>((resolve) => server.once('request', resolve));
  const post = request({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, method: 'POST', agent: false });
  post.on('error', () => {});
  post.end(body);
  const req = await arrived;
  markBody(req);
  t.equal(req.readableFlowing, false, 'marking does not start the body before its reader listens');
  const chunks: Buffer[] = [];
  const written: Promise<void>[] = [];
  req.on('data', (chunk: Buffer) => {
    chunks.push(chunk);
    client.write(chunk); // as undici does: no encoding, no callback
  });
  req.resume();
  await new Promise((resolve) => req.once('end', resolve));
  const unmarked = Buffer.alloc(RELEASE_MIN_BYTES * 2, 7);
  written.push(new Promise((resolve) => client.write(unmarked, () => resolve())));
  const got = await received(peer, body.length + unmarked.length);
  await Promise.all(written);
  t.equal(sha(got), sha(Buffer.concat([body, unmarked])), 'the peer got every byte');
  const large = chunks.filter((c) => c.buffer.byteLength >= RELEASE_MIN_BYTES || c.byteLength === 0);
  t.ok(large.length > 0, 'the body came in chunks worth freeing');
  t.ok(large.every((c) => c.byteLength === 0), 'every large body chunk was freed');
  t.equal(unmarked.byteLength, RELEASE_MIN_BYTES * 2, 'a buffer that was not marked is untouched');
});

/** Sends `bytes` and reads them back with one read(), as undici does (a concatenation if they came in pieces). */
async function readAtLeast(reader: Socket, writer: Socket, bytes: number): Promise<Buffer> {
  writer.write(randomBytes(bytes));
  while (reader.readableLength < bytes) await new Promise((resolve) => reader.once('readable', resolve));
  return reader.read() as Buffer;
}

t.test('releaseWhenWritten frees an upstream read once all its views are written, and only then', async (t) => {
  const [client, peer] = await socketPair(t);
  releaseThrough(client);
  const read = await readAtLeast(client, peer, RELEASE_MIN_BYTES * 3);
  t.equal(read.byteOffset, 0, 'a read starts a buffer of its own');
  t.ok(read.byteLength >= RELEASE_MIN_BYTES, 'and large enough to free');
  const half = read.byteLength >> 1;
  const first = read.subarray(0, half);
  const second = read.subarray(half);
  const doneFirst = releaseWhenWritten(first)!;
  const doneSecond = releaseWhenWritten(second)!;
  t.type(doneFirst, 'function');
  doneSecond();
  t.ok(read.byteLength > 0, 'the first view is still being written: not freed');
  doneFirst(new Error('write failed'));
  t.ok(read.byteLength > 0, 'a failed write frees nothing');

  const next = await readAtLeast(client, peer, RELEASE_MIN_BYTES * 3);
  const a = releaseWhenWritten(next.subarray(0, 100))!;
  const b = releaseWhenWritten(next.subarray(100))!;
  a();
  t.ok(next.byteLength > 0, 'one view of two written: not freed');
  b();
  t.equal(next.byteLength, 0, 'every view written and the last byte handed out: freed');

  const mine = Buffer.alloc(RELEASE_MIN_BYTES * 2);
  t.equal(releaseWhenWritten(mine), undefined, 'a buffer no upstream socket read is never freed');
  t.equal(releaseWhenWritten(Buffer.from('small')), undefined, 'nor a pooled one');
});

t.test("the sidecar loads undici's Agent and connector alone, not its index", async (t) => {
  const { execFileSync } = await import('node:child_process');
  const script = [
    "import '@devstack/sidecar';",
    "import { createRequire } from 'node:module';",
    "const cache = Object.keys(createRequire(import.meta.resolve('@devstack/sidecar')).cache);",
    'process.stdout.write(JSON.stringify(cache.filter((p) => /[\\\\/]undici[\\\\/]/.test(p))));',
  ].join('\n');
  const loaded = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' })) as string[];
  t.ok(loaded.some((p) => p.endsWith('/undici/lib/dispatcher/agent.js')), 'the Agent module by its path');
  t.notOk(loaded.some((p) => p.endsWith('/undici/index.js')), 'not the index, with fetch, WebSocket and the rest');

  const { loadFromUndici } = await import('../dist/undici.js');
  const undici = await import('undici');
  t.equal(loadFromUndici('undici/lib/dispatcher/agent.js', 'Agent'), undici.Agent, 'the module is the index\'s own Agent');
  t.equal(loadFromUndici('undici/lib/no-such-module.js', 'Agent'), undici.Agent, 'a module a release moved: the index\'s');
  t.equal(loadFromUndici('undici/lib/core/util.js', 'buildConnector'), undici.buildConnector, 'a module that is not the function: the index\'s');
});
