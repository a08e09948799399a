/*
 * The app stub of the pod path: what a service behind the sidecar does when it calls another
 * service. It forwards each request to its target (the sidecar's outbound listener, or the
 * upstream itself for the no-sidecar baseline) with `Host: upstream` and the routing key copied
 * from the incoming request, the way an app with the SDK propagates it. Kept minimal (node:http
 * with a keep-alive agent) so that the sidecar's share of the pod path stays visible.
 */
import { Agent, createServer, request } from 'node:http';
import { announce, exitWithParent, listen, settings, tuneServer } from './ipc.ts';

interface AppSettings {
  targetPort?: number;
  keyHeader?: string;
}

const options = settings<AppSettings>();
let targetPort = options.targetPort ?? 0;
const keyHeader = options.keyHeader ?? 'uber-ctx-key';
const agent = new Agent({ keepAlive: true, maxSockets: 512, scheduling: 'lifo' });
const PASS_BACK = ['content-type', 'content-length', 'x-upstream', 'x-devstack-lane'];

// The sidecar needs the app's port before it starts, and the app needs the sidecar's outbound
// port: the harness starts the app first and tells it the target afterwards.
process.on('message', (message: { type?: string; targetPort?: number }) => {
  if (message.type === 'target' && typeof message.targetPort === 'number') {
    targetPort = message.targetPort;
    process.send?.({ type: 'target-set' });
  }
});

exitWithParent();
const server = createServer((req, res) => {
  const headers: Record<string, string> = { host: 'upstream' };
  const key = req.headers[keyHeader];
  if (typeof key === 'string') headers[keyHeader] = key;
  const length = req.headers['content-length'];
  if (length !== undefined) headers['content-length'] = length;
  else if (req.headers['transfer-encoding'] !== undefined) headers['transfer-encoding'] = 'chunked';
  const out = request({ agent, host: '127.0.0.1', port: targetPort, method: req.method, path: req.url, headers }, (upstream) => {
    const back: Record<string, string | string[]> = {};
    for (const name of PASS_BACK) {
      const value = upstream.headers[name];
      if (value !== undefined) back[name] = value;
    }
    res.writeHead(upstream.statusCode ?? 502, back);
    upstream.pipe(res);
  });
  out.on('error', () => {
    if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
    res.end('app: upstream call failed');
  });
  req.pipe(out);
});
tuneServer(server);
announce({ app: await listen(server) });
