/*
 * A real PostgreSQL for the tests, from Debian's packages (.ci/run installs `postgresql`): initdb
 * into a fresh temporary directory and postgres on a free port of 127.0.0.1 (its socket in that
 * directory), both run as the `postgres` user when the tests run as root (PostgreSQL refuses
 * root), stopped and removed at teardown.
 */
import { spawn, type SpawnOptions } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

export interface Postgres {
  host: string;
  port: number;
  /** The libpq variables for an admin connection to it. */
  env: Record<string, string>;
  /** node-postgres's config for `database` as the admin. */
  config(database?: string): pg.ClientConfig;
  /** One statement on `database` as the admin, in a connection of its own. */
  query<R extends Record<string, unknown> = Record<string, unknown>>(database: string, sql: string, values?: unknown[]): Promise<R[]>;
}

interface Tap {
  teardown(fn: () => unknown): void;
}

/** The newest `bin` directory of Debian's PostgreSQL packages that has initdb and postgres. */
export function postgresBin(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((v) => /^[0-9]+(\.[0-9]+)?$/.test(v))
    .sort((a, b) => Number(b) - Number(a));
  return versions.map((v) => join(root, v, 'bin')).find((bin) => existsSync(join(bin, 'initdb')) && existsSync(join(bin, 'postgres')));
}

/** Why the tests cannot run here, or undefined when they can. */
export function postgresMissing(): string | undefined {
  if (postgresBin() === undefined) return 'PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb and postgres; apt-get install postgresql, as .ci/run does)';
  if (process.getuid?.() === 0 && account() === undefined) return 'running as root and there is no postgres user to run PostgreSQL as (apt-get install postgresql creates it)';
  return undefined;
}

function account(): { uid: number; gid: number } | undefined {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('postgres:'));
  if (line === undefined) return undefined;
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function runToEnd(command: string, args: string[], options: SpawnOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { ...options, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr!.setEncoding('utf8').on('data', (c: string) => (err += c));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${command} exited ${code}: ${err.slice(-2000)}`))));
  });
}

/**
 * Starts a PostgreSQL of its own; the caller checks `postgresMissing()` first. Ready when the
 * server says so on stderr (no polling), within 60 s or the start fails.
 */
export async function startPostgres(t: Tap): Promise<Postgres> {
  const bin = postgresBin()!;
  const as = process.getuid?.() === 0 ? account()! : undefined;
  const dir = mkdtempSync(join(tmpdir(), 'devstack-pg-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  if (as !== undefined) chownSync(dir, as.uid, as.gid);
  const data = join(dir, 'data');
  const options: SpawnOptions = { cwd: dir, env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', LANG: 'C', LC_ALL: 'C' }, ...(as === undefined ? {} : { uid: as.uid, gid: as.gid }) };
  await runToEnd(join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync'], options);
  const port = await freePort();
  const server = spawn(join(bin, 'postgres'), ['-D', data, '-h', '127.0.0.1', '-p', String(port), '-k', dir, '-c', 'fsync=off', '-c', 'full_page_writes=off', '-c', 'synchronous_commit=off', '-c', 'max_connections=60'], { ...options, stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = new Promise<void>((resolve) => server.on('close', () => resolve()));
  t.teardown(async () => {
    // SIGINT: PostgreSQL's fast shutdown (sessions are ended, not waited for).
    server.kill('SIGINT');
    await exited;
  });
  await new Promise<void>((resolve, reject) => {
    let log = '';
    const timer = setTimeout(() => reject(new Error(`PostgreSQL did not start within 60 s: ${log.slice(-2000)}`)), 60_000);
    server.stderr!.setEncoding('utf8').on('data', (c: string) => {
      log += c;
      if (log.includes('database system is ready to accept connections')) {
        clearTimeout(timer);
        resolve();
      }
    });
    server.on('close', (code) => {
      clearTimeout(timer);
      reject(new Error(`PostgreSQL exited ${code} before it was ready: ${log.slice(-2000)}`));
    });
  });
  const host = '127.0.0.1';
  const config = (database = 'postgres'): pg.ClientConfig => ({ host, port, user: 'postgres', database });
  return {
    host,
    port,
    env: { PGHOST: host, PGPORT: String(port), PGUSER: 'postgres' },
    config,
    async query<R extends Record<string, unknown>>(database: string, sql: string, values?: unknown[]): Promise<R[]> {
      const client = new pg.Client(config(database));
      await client.connect();
      try {
        return (await client.query(sql, values)).rows as R[];
      } finally {
        await client.end();
      }
    },
  };
}
