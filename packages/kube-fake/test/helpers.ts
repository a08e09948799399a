import { request, type IncomingHttpHeaders } from 'node:http';
import { createInterface } from 'node:readline';
import type { FakeApiServer, KubeObject } from '@devstack/kube-fake';

export interface WatchEvent {
  type: string;
  object: KubeObject & { code?: number; reason?: string };
}

/** A raw watch stream read line by line, so tests see exactly what the server sends. */
export interface RawWatch {
  status: number;
  headers: IncomingHttpHeaders;
  next(): Promise<WatchEvent>;
  /** Resolves when the server ends the stream (cleanly or not). */
  ended: Promise<void>;
  close(): void;
}

export function openWatch(api: FakeApiServer, path: string, query: Record<string, string> = {}): Promise<RawWatch> {
  const url = new URL(path, api.url);
  url.searchParams.set('watch', '1');
  for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
  return new Promise((resolve, reject) => {
    // A connection of its own, as watch clients use, so closing it touches nothing else.
    const req = request(url, { agent: false }, (res) => {
      const queue: WatchEvent[] = [];
      const waiters: Array<{ resolve: (e: WatchEvent) => void; reject: (e: Error) => void }> = [];
      let done = false;
      const ended = new Promise<void>((resolveEnd) => {
        const finish = () => {
          if (done) return;
          done = true;
          for (const w of waiters.splice(0)) w.reject(new Error('watch ended'));
          resolveEnd();
        };
        res.on('end', finish);
        res.on('close', finish);
        res.on('error', finish);
      });
      const lines = createInterface(res);
      // A watch the test cuts, or the server resets, ends the stream; `ended` reports it.
      lines.on('error', () => undefined);
      lines.on('line', (line) => {
        if (line.trim() === '') return;
        const event = JSON.parse(line) as WatchEvent;
        const waiter = waiters.shift();
        if (waiter) waiter.resolve(event);
        else queue.push(event);
      });
      resolve({
        status: res.statusCode ?? 0,
        headers: res.headers,
        ended,
        next: () =>
          queue.length > 0
            ? Promise.resolve(queue.shift()!)
            : done
              ? Promise.reject(new Error('watch ended'))
              : new Promise((res2, rej2) => waiters.push({ resolve: res2, reject: rej2 })),
        close: () => req.destroy(),
      });
    });
    req.on('error', reject);
    req.end();
  });
}

/** Reads `count` events. */
export async function take(watch: RawWatch, count: number): Promise<WatchEvent[]> {
  const out: WatchEvent[] = [];
  for (let i = 0; i < count; i++) out.push(await watch.next());
  return out;
}

export const summary = (events: WatchEvent[]) => events.map((e) => `${e.type} ${e.object.metadata?.name ?? ''}`.trim());

/** A parsed JSON answer: assertions read it with t.match, and these few fields directly. */
export interface Answer {
  [field: string]: unknown;
  kind?: string;
  metadata?: { resourceVersion?: string; continue?: string; remainingItemCount?: number; name?: string; [field: string]: unknown };
  items?: KubeObject[];
  code?: number;
  reason?: string;
}

export async function call(api: FakeApiServer, method: string, path: string, body?: unknown, contentType = 'application/json') {
  const res = await fetch(new URL(path, api.url), {
    method,
    headers: body === undefined ? {} : { 'content-type': contentType },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: (text ? JSON.parse(text) : undefined) as Answer };
}

export const service = (name: string, labels: Record<string, string> = {}, namespace = 'default'): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace, labels },
  spec: { ports: [{ name: 'http', port: 80 }] },
});
