/*
 * A chain of real services on port 0 for the SDK tests: a (node:http, calls on with fetch) ->
 * b (Express, calls on with undici.request) -> c (Fastify, calls on with http.request) -> d (a
 * node:http leaf that echoes what it received). Each reports the routing key it saw, so a test can
 * check every hop of one request.
 */
import http, { type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import Fastify from 'fastify';
import { request as undiciRequest, type Dispatcher } from 'undici';
import { baggageValues } from '@devstack/core';
import { getRoutingKey, routingMiddleware, withRouting } from '@devstack/sdk';
import { routingPlugin } from '@devstack/sdk/fastify';

export interface Hop {
  service: string;
  lane: string;
  /** getRoutingKey() inside the handler. */
  key: string | null;
  /** The plain header as received. */
  plain: string | null;
  /** Values of the key's entries in the received `baggage`. */
  entries: string[];
  /** The `baggage` header as received. */
  baggage: string | null;
  host: string | null;
  /** The `x-devstack-lane` of the response this hop got from the next one. */
  nextLane?: string | null;
  next?: Hop;
}

export type NextUrl = () => string;

/** How a service reaches the next one: by address (the default) or through a proxy (a sidecar). */
export interface Via {
  /** For fetch (a) and undici (b): a ProxyAgent, say. */
  dispatcher?: Dispatcher;
  /** For http.request (c): send the absolute URL as the request target to this proxy. */
  proxy?: { host: string; port: number };
}

function hop(service: string, lane: string, req: IncomingMessage): Hop {
  const plain = req.headers['uber-ctx-key'];
  return {
    service,
    lane,
    key: getRoutingKey() ?? null,
    plain: typeof plain === 'string' ? plain : null,
    entries: [...baggageValues(req.headers['baggage'], 'uber-ctx-key')],
    baggage: [req.headers['baggage'] ?? []].flat().join(', ') || null,
    host: req.headers.host ?? null,
  };
}

export function getJson(url: string, headers: Record<string, string> = {}): Promise<{ status: number; lane: string | null; body: Hop }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode ?? 0, lane: (res.headers['x-devstack-lane'] as string | undefined) ?? null, body: JSON.parse(text) as Hop });
        } catch (error) {
          reject(error instanceof Error ? error : new Error(String(error)));
        }
      });
    });
    req.on('error', reject);
    req.end();
  });
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

export interface Running {
  url: string;
  close(): Promise<void>;
}

function closer(server: Server): () => Promise<void> {
  return () =>
    new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
}

/** a: plain node:http, calls the next service with global fetch. */
export async function startA(lane: string, next: NextUrl, via: Via = {}): Promise<Running> {
  const server = http.createServer(
    withRouting(
      async (req, res) => {
        const me = hop('a', lane, req);
        const r = await fetch(next(), { dispatcher: via.dispatcher } as RequestInit);
        me.nextLane = r.headers.get('x-devstack-lane');
        me.next = (await r.json()) as Hop;
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify(me));
      },
      { lane },
    ),
  );
  return { url: await listen(server), close: closer(server) };
}

/** b: Express, with a body parser in front of the route, calls the next service with undici. */
export async function startB(lane: string, next: NextUrl, via: Via = {}): Promise<Running> {
  const app = express();
  app.use(routingMiddleware({ lane }));
  app.use(express.json({ limit: '1mb' }));
  const handle = async (req: express.Request, res: express.Response) => {
    const me = hop('b', lane, req);
    const r = await undiciRequest(next(), { dispatcher: via.dispatcher });
    const lh = r.headers['x-devstack-lane'];
    me.nextLane = typeof lh === 'string' ? lh : null;
    me.next = (await r.body.json()) as Hop;
    res.json(me);
  };
  app.get('/', handle);
  app.post('/', handle);
  const server = http.createServer(app);
  return { url: await listen(server), close: closer(server) };
}

function httpGet(url: string, proxy?: Via['proxy']): Promise<{ lane: string | null; body: Hop }> {
  // Through a proxy: absolute-form request target, Host as the app meant it.
  const options: http.RequestOptions = proxy ? { host: proxy.host, port: proxy.port, path: url, headers: { host: new URL(url).host } } : {};
  return new Promise((resolve, reject) => {
    const req = http.request(proxy ? `http://${proxy.host}:${proxy.port}/` : url, options, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ lane: (res.headers['x-devstack-lane'] as string | undefined) ?? null, body: JSON.parse(text) as Hop }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** c: Fastify, calls the next service with http.request. */
export async function startC(lane: string, next: NextUrl, via: Via = {}): Promise<Running> {
  const app = Fastify();
  await app.register(routingPlugin, { lane });
  app.get('/', async (request) => {
    const me = hop('c', lane, request.raw);
    const r = await httpGet(next(), via.proxy);
    me.nextLane = r.lane;
    me.next = r.body;
    return me;
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  return { url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`, close: () => app.close() };
}

/** d: the leaf, echoes what it received. */
export async function startD(lane: string): Promise<Running> {
  const server = http.createServer(
    withRouting(
      (req, res) => {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify(hop('d', lane, req)));
      },
      { lane },
    ),
  );
  return { url: await listen(server), close: closer(server) };
}

/** The hops of one request, first to last. */
export function hops(first: Hop): Hop[] {
  const out: Hop[] = [];
  for (let h: Hop | undefined = first; h !== undefined; h = h.next) out.push(h);
  return out;
}

/** `service:lane` for every hop of a chain's answer. */
export function lanes(body: Hop): string[] {
  return hops(body).map((h) => `${h.service}:${h.lane}`);
}

/**
 * DESIGN.md's routing table and chain rule over the test fleet (a, b, c, d; copies: a has
 * feature1 and feature2, b feature1, c feature2, d feature1), entered at the edge
 * `example.com`: [name, request headers, lanes at every hop, the key every hop must carry].
 */
export const ROUTING_TABLE: ReadonlyArray<[string, Record<string, string>, string[], string | null]> = [
  ['Host feature1.example.com', { host: 'feature1.example.com' }, ['a:feature1', 'b:feature1', 'c:base', 'd:feature1'], 'feature1'],
  ['uber-ctx-key: feature1', { host: 'example.com', 'uber-ctx-key': 'feature1' }, ['a:feature1', 'b:feature1', 'c:base', 'd:feature1'], 'feature1'],
  ['uber-ctx-key: feature2', { host: 'example.com', 'uber-ctx-key': 'feature2' }, ['a:feature2', 'b:base', 'c:feature2', 'd:base'], 'feature2'],
  ['no key', { host: 'example.com' }, ['a:base', 'b:base', 'c:base', 'd:base'], null],
  ['unknown key', { host: 'example.com', 'uber-ctx-key': 'feature9' }, ['a:base', 'b:base', 'c:base', 'd:base'], 'feature9'],
  ['invalid key', { host: 'example.com', 'uber-ctx-key': 'Feature1' }, ['a:base', 'b:base', 'c:base', 'd:base'], null],
];

/** The lanes of the whole chain (joined by commas) for each key, `none` for no key. */
export const CHAIN_BY_KEY: Readonly<Record<string, string>> = {
  feature1: 'a:feature1,b:feature1,c:base,d:feature1',
  feature2: 'a:feature2,b:base,c:feature2,d:base',
  feature9: 'a:base,b:base,c:base,d:base',
  none: 'a:base,b:base,c:base,d:base',
};
