/*
 * The upstream stub: the service every configuration ends at. One process, one listener per lane,
 * each answering with a body of the requested size from a buffer made once, so the stub costs as
 * little as a Node server can and differences between configurations are the hops in front of it.
 *   GET /bytes/<n>   -> n bytes
 *   POST any path    -> the body is drained as it arrives; answers {"received":<bytes>}
 * Every answer names its lane in `x-upstream`, which is how the harness checks the routing.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { body, requestedSize } from './bodies.ts';
import { announce, exitWithParent, listen, settings, tuneServer } from './ipc.ts';

const { lanes = ['base', 'feature1'] } = settings<{ lanes?: string[] }>();

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
    const size = requestedSize(req.url ?? '');
    if (size === undefined) {
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
