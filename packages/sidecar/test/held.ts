/*
 * What the bounds tests share: an upstream that holds every request until released and counts
 * the connections it accepted, and a reading of one metric from the admin listener.
 */
import type { ServerResponse } from 'node:http';
import { send, upstream, type Tap } from './helpers.ts';

export interface Held {
  origin: string;
  /** Requests that reached the upstream. */
  readonly hits: number;
  /** TCP connections the upstream accepted. */
  readonly sockets: number;
  /** Resolves once `n` requests have reached the upstream. */
  arrived(n: number): Promise<void>;
  /** Answers every held request, and every later one at once. */
  release(): void;
}

export async function heldUpstream(t: Tap, name = 'orders'): Promise<Held> {
  const held: ServerResponse[] = [];
  const waiters: { n: number; resolve: () => void }[] = [];
  let open = false;
  let sockets = 0;
  let hits = 0;
  const answer = (res: ServerResponse) => res.writeHead(200, { 'x-upstream': name }).end('ok');
  const server = await upstream(t, name, (_req, res) => {
    hits++;
    if (open) answer(res);
    else held.push(res);
    for (let i = waiters.length - 1; i >= 0; i--) {
      if (hits >= waiters[i]!.n) waiters.splice(i, 1)[0]!.resolve();
    }
  });
  server.server.on('connection', () => sockets++);
  return {
    origin: server.origin,
    get hits() {
      return hits;
    },
    get sockets() {
      return sockets;
    },
    arrived: (n) => (hits >= n ? Promise.resolve() : new Promise((resolve) => waiters.push({ n, resolve }))),
    release() {
      open = true;
      held.splice(0).forEach(answer);
    },
  };
}

/** One sample of a metric from `/metrics` (0 when the series does not exist yet). */
export async function metric(adminPort: number, name: string, labels: Record<string, string>): Promise<number> {
  const text = (await send(adminPort, { path: '/metrics' })).body;
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (wanted.every((l) => line.includes(l))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return 0;
}
