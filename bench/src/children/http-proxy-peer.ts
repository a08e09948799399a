/*
 * The Node peer: the smallest proxy an engineer would write with `http-proxy` to do the same job,
 * routing on the `uber-ctx-key` header to a feature or the base target, with a keep-alive agent
 * (without one, http-proxy opens a connection per request and the comparison would be unfair).
 */
import { Agent, createServer, type IncomingMessage } from 'node:http';
import httpProxy from 'http-proxy';
import { announce, exitWithParent, listen, settings, tuneServer } from './ipc.ts';

interface PeerSettings {
  base: string;
  features: Record<string, string>;
  keyHeader?: string;
}

const { base, features, keyHeader = 'uber-ctx-key' } = settings<PeerSettings>();
const routes = new Map(Object.entries(features));
const agent = new Agent({ keepAlive: true, maxSockets: 512, scheduling: 'lifo' });
const proxy = httpProxy.createProxyServer({ agent });
const lanes = new WeakMap<IncomingMessage, string>();

proxy.on('proxyRes', (proxyRes, req) => {
  proxyRes.headers['x-devstack-lane'] = lanes.get(req) ?? 'base';
});
proxy.on('error', (_error, _req, res) => {
  if ('writeHead' in res && !res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
  res.end('bad gateway');
});

exitWithParent();
const server = createServer((req, res) => {
  const key = req.headers[keyHeader];
  const target = typeof key === 'string' ? routes.get(key) : undefined;
  lanes.set(req, target === undefined ? 'base' : (key as string));
  proxy.web(req, res, { target: target ?? base });
});
tuneServer(server);
announce({ proxy: await listen(server) });
