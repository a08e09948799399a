/*
 * A fake API server with a small fleet, the real `devstack-relay` command against it, and raw
 * stream readers: what the relay tests share.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { request, type IncomingMessage } from 'node:http';
import { fileURLToPath } from 'node:url';
import { startFakeApiServer, type FakeApiServer } from '@devstack/kube-fake';
import type { RelayMessage } from '@devstack/registry-relay';

export const NS = 'shop';
const CLI = fileURLToPath(new URL('../bin/devstack-relay.cjs', import.meta.url));

export interface Tap {
  teardown(fn: () => unknown): void;
  testdirName: string;
}

export function service(name: string, svc: string, key?: string, ns = NS) {
  const labels: Record<string, string> = { 'devstack.io/service': svc };
  if (key !== undefined) labels['devstack.io/feature'] = key;
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: ns, labels }, spec: { ports: [{ name: 'http', port: 80 }] } };
}

export function slice(name: string, addresses: string[], ready = true, ns = NS) {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: `${name}-abc`, namespace: ns, labels: { 'kubernetes.io/service-name': name } },
    addressType: 'IPv4',
    endpoints: addresses.map((a) => ({ addresses: [a], conditions: { ready } })),
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
  };
}

export const sliceRef = (name: string, ns = NS) => ({ apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', name: `${name}-abc`, namespace: ns });
export const serviceRef = (name: string, ns = NS) => ({ apiVersion: 'v1', kind: 'Service', name, namespace: ns });

export function deploy(api: FakeApiServer, name: string, svc: string, address: string, key?: string, ns = NS): void {
  api.create(service(name, svc, key, ns));
  api.create(slice(name, [address], true, ns));
}

/** The fake API server with `web` (base) and `orders` (base) in `shop`, and `secret` in `other`. */
export async function fleet(t: Tap): Promise<{ api: FakeApiServer; kubeconfig: string }> {
  const api = await startFakeApiServer({ namespaces: [NS, 'other'] });
  t.teardown(() => api.close());
  deploy(api, 'web', 'web', '10.0.0.1');
  deploy(api, 'orders', 'orders', '10.0.0.2');
  deploy(api, 'secret', 'secret', '10.9.9.9', undefined, 'other');
  const kubeconfig = await api.kubeconfig(`${t.testdirName}-kubeconfig`);
  return { api, kubeconfig };
}

export interface RunningRelay {
  port: number;
  adminPort: number;
  proc: ChildProcess;
  log: string[];
  exited: Promise<number | null>;
}

/** The real command; resolves once it listens (before its first sync). */
export async function startRelay(t: Tap, args: readonly string[]): Promise<RunningRelay> {
  const proc = spawn(process.execPath, [CLI, '--port', '0', '--admin-port', '0', '--host', '127.0.0.1', '--admin-host', '127.0.0.1', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  t.teardown(() => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    return exited;
  });
  const log: string[] = [];
  return new Promise<RunningRelay>((resolve, reject) => {
    let text = '';
    proc.stderr!.setEncoding('utf8');
    proc.stderr!.on('data', (chunk: string) => {
      text += chunk;
      let nl: number;
      while ((nl = text.indexOf('\n')) >= 0) {
        const line = text.slice(0, nl);
        text = text.slice(nl + 1);
        log.push(line);
        try {
          const entry = JSON.parse(line) as { msg?: string; port?: number; adminPort?: number };
          if (entry.msg === 'listening') resolve({ port: entry.port!, adminPort: entry.adminPort!, proc, log, exited });
        } catch {
          // Not a log line (a usage error): kept in `log`.
        }
      }
    });
    void exited.then((code) => reject(new Error(`devstack-relay exited (${code}) before listening:\n${log.join('\n')}${text}`)));
  });
}

export async function get(port: number, path: string): Promise<{ status: number; body: Record<string, unknown>; text: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  const text = await res.text();
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    body = {};
  }
  return { status: res.status, body, text };
}

/** Polls an admin path until `ok` accepts it (bounded: the tap timeout ends a test that never gets there). */
export async function until<T>(probe: () => Promise<T>, ok: (value: T) => boolean): Promise<T> {
  for (;;) {
    const value = await probe();
    if (ok(value)) return value;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A stream read line by line, as a client of the protocol would. */
export class Stream {
  readonly messages: RelayMessage[] = [];
  readonly status: number;
  readonly res: IncomingMessage;
  #buffered = '';
  #waiters: Array<() => void> = [];
  ended = false;

  private constructor(res: IncomingMessage) {
    this.res = res;
    this.status = res.statusCode!;
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      this.#buffered += chunk;
      let nl: number;
      while ((nl = this.#buffered.indexOf('\n')) >= 0) {
        const line = this.#buffered.slice(0, nl);
        this.#buffered = this.#buffered.slice(nl + 1);
        if (line !== '') this.messages.push(JSON.parse(line) as RelayMessage);
      }
      this.#wake();
    });
    res.on('end', () => {
      this.ended = true;
      this.#wake();
    });
    res.on('error', () => {
      this.ended = true;
      this.#wake();
    });
  }

  static open(port: number, namespace: string, query = ''): Promise<Stream> {
    return new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path: `/v1/namespaces/${namespace}/stream${query}`, agent: false }, (res) => resolve(new Stream(res)));
      req.on('error', reject);
      req.end();
    });
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }

  /** The first message (from index `from`) that `match` accepts. */
  async next(match: (m: RelayMessage) => boolean = () => true, from = 0): Promise<RelayMessage> {
    for (;;) {
      const found = this.messages.slice(from).find(match);
      if (found !== undefined) return found;
      if (this.ended) throw new Error(`the stream ended; got ${JSON.stringify(this.messages.map((m) => m.type))}`);
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }

  close(): void {
    this.res.destroy();
  }
}

/** The routing state a sequence of messages comes to: service -> lane -> targets. */
export function replay(messages: readonly RelayMessage[]): Record<string, unknown> {
  let state: Record<string, unknown> = {};
  for (const m of messages) {
    if (m.type === 'snapshot') state = { ...m.services };
    else if (m.type === 'delta') {
      for (const [name, entry] of Object.entries(m.services)) {
        if (entry === null) delete state[name];
        else state[name] = entry;
      }
    }
  }
  return state;
}
