/*
 * The small protocol between the harness and the Node target processes it forks: the child says
 * which ports it listens on, and it exits when the harness goes away (the IPC channel closes), so
 * a crashed or interrupted run leaves no load targets behind.
 */
import type { Server } from 'node:http';
import type { Server as NetServer } from 'node:net';

export interface ReadyMessage {
  type: 'ready';
  ports: Record<string, number>;
}

/** Any listening server: node:http's, or node:http2's for the h2 upstream. */
export function listen(server: NetServer): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      resolve(typeof address === 'object' && address !== null ? address.port : 0);
    });
  });
}

/** Keep-alive as long as a run lasts: the load generator keeps every connection open. */
export function tuneServer(server: Server): void {
  server.keepAliveTimeout = 120_000;
  server.headersTimeout = 121_000;
  server.requestTimeout = 0;
  server.maxRequestsPerSocket = 0;
}

export function announce(ports: Record<string, number>): void {
  const message: ReadyMessage = { type: 'ready', ports };
  process.send?.(message);
}

export function exitWithParent(): void {
  process.on('disconnect', () => process.exit(0));
  process.on('SIGTERM', () => process.exit(0));
}

/** The child's settings, passed as one JSON argument. */
export function settings<T>(): T {
  return JSON.parse(process.argv[2] ?? '{}') as T;
}
