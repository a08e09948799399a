import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Tap } from './helpers.ts';

export interface BadServer {
  url: string;
  kubeconfig: string;
  /** `METHOD path` of every request, in order. */
  requests: string[];
}

/**
 * An HTTP server on 127.0.0.1 that is not a Kubernetes API server (a hung one, a proxy's error
 * page, a `null`), with a kubeconfig that points at it. `answer` may leave the response unanswered.
 */
export async function badServer(t: Tap, answer: (req: IncomingMessage, res: ServerResponse) => void): Promise<BadServer> {
  const requests: string[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url?.split('?')[0]}`);
    req.resume();
    answer(req, res);
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  );
  const { port } = server.address() as { port: number };
  const url = `http://127.0.0.1:${port}`;
  const dir = mkdtempSync(join(tmpdir(), 'devstack-hooks-bad-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(
    kubeconfig,
    ['apiVersion: v1', 'kind: Config', 'clusters:', '- name: bad', '  cluster:', `    server: ${url}`, 'contexts:', '- name: bad', '  context: {cluster: bad, user: bad, namespace: team-a}', 'current-context: bad', 'users:', '- name: bad', '  user: {}', ''].join('\n'),
  );
  return { url, kubeconfig, requests };
}

/** A 200 with `body` as `type`. */
export const answerWith =
  (status: number, type: string, body: string) =>
  (_req: IncomingMessage, res: ServerResponse): void => {
    res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };
