/*
 * A client that resets its HTTP/2 stream (or drops its connection) while the sidecar is still
 * working on the answer: the answer must be dropped, not written to the closed stream, where
 * node:http2 throws and the exception would end the process.
 */
import t from 'tap';
import { connect, constants, type ClientHttp2Session, type ClientHttp2Stream } from 'node:http2';
import { sidecar, writeRegistry } from './helpers.ts';
import { grpcFrame, h2Client, h2Send, h2Upstream } from './h2-helpers.ts';

const GRPC = { ':method': 'POST', ':path': '/shop.Inventory/Get', 'content-type': 'application/grpc', te: 'trailers' };

function open(session: ClientHttp2Session, headers: Record<string, string>): ClientHttp2Stream {
  const stream = session.request(headers);
  stream.on('error', () => undefined); // reset on purpose
  stream.end(grpcFrame('x'));
  return stream;
}

t.test('clients that leave before the answer: the sidecar drops it and goes on', async (tt) => {
  const inventory = await h2Upstream(tt, 'inventory-base');
  // Port 1: nothing listens, so the sidecar's answer (unreachable) comes after a failed connect.
  const registry = writeRegistry(tt.testdir(), {
    gone: { base: [{ url: 'http://127.0.0.1:1', protocol: 'h2c' }] },
    inventory: { base: [{ url: inventory.origin, protocol: 'h2c' }] },
  });
  const s = await sidecar(tt, registry);
  const port = s.addresses.outbound!.port;
  const origin = `http://127.0.0.1:${port}`;

  for (let round = 0; round < 20; round++) {
    const session = connect(origin);
    session.on('error', () => undefined);
    const streams = [
      open(session, { ...GRPC, ':authority': 'gone' }),
      open(session, { ':method': 'GET', ':path': '/', ':authority': 'gone' }),
      open(session, { ...GRPC, ':authority': 'gone', 'grpc-timeout': '1m' }),
      open(session, { ...GRPC, ':authority': 'inventory' }),
    ];
    // Reset right after sending (before the refused connect is reported), or drop the whole connection.
    await new Promise((resolve) => setImmediate(resolve));
    if (round % 2 === 0) streams.forEach((stream) => stream.close(constants.NGHTTP2_CANCEL));
    else session.destroy();
    await new Promise((resolve) => setTimeout(resolve, 5));
    session.destroy();
  }

  const session = h2Client(tt, port);
  const after = await h2Send(session, { ':authority': 'gone', ...GRPC });
  tt.equal(after.headers['grpc-status'] ?? after.trailers?.['grpc-status'], '14', 'still answering: the unreachable upstream is UNAVAILABLE');
  const served = await h2Send(session, { ':authority': 'inventory' });
  tt.equal(served.status, 200, 'and routing');
  tt.equal(JSON.parse(served.body).name, 'inventory-base');
});
