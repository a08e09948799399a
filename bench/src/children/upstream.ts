/*
 * The upstream stub: the service every configuration ends at. One process, one listener per lane,
 * each answering with a body of the requested size from a buffer made once, so the stub costs as
 * little as a Node server can and differences between configurations are the hops in front of it.
 *   GET /bytes/<n>   -> n bytes
 *   POST any path    -> the body is drained as it arrives; answers {"received":<bytes>}
 * Every answer names its lane in `x-upstream`, which is how the harness checks the routing.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { announce, exitWithParent, listen, settings, tuneServer } from './ipc.ts';

const { lanes = ['base', 'feature1'] } = settings<{ lanes?: string[] }>();
const bodies = new Map<number, Buffer>();
const MAX_BODY = 64 * 1024 * 1024;

function body(size: number): Buffer {
  let buf = bodies.get(size);
  if (!buf) {
    buf = Buffer.alloc(size, 'x');
    bodies.set(size, buf);
  }
  return buf;
}

function handler(lane: string) {
  return (req: IncomingMessage, res: ServerResponse) => {
    if (req.method === 'POST' || req.method === 'PUT') {
      let received = 0;
      req.on('data', (chunk: Buffer) => {
        received += chunk.length;
      });
      req.on('end', () => {
        const out = `{"received":${received}}`;
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(out), 'x-upstream': lane });
        res.end(out);
      });
      return;
    }
    const match = /^\/bytes\/(\d+)$/.exec(req.url ?? '');
    const size = match ? Number(match[1]) : -1;
    if (size < 0 || size > MAX_BODY) {
      res.writeHead(404, { 'content-type': 'text/plain', 'content-length': 9, 'x-upstream': lane });
      res.end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size, 'x-upstream': lane });
    res.end(body(size));
  };
}

exitWithParent();
const ports: Record<string, number> = {};
for (const lane of lanes) {
  const server = createServer(handler(lane));
  tuneServer(server);
  ports[lane] = await listen(server);
}
announce(ports);
