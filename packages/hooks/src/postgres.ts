import { ConfigError, DevstackError } from '@devstack/core';
import type * as PgModule from 'pg';
import type { Client, ClientConfig } from 'pg';
import { NotFoundError, NotOwnedError, PostgresCallError, RetriesExhaustedError, SecretValueError, TemplateBusyError } from './errors.js';
import { secretStore, type KubeTarget } from './kube.js';
import { SILENT, type Logger } from './log.js';
import { DEFAULT_REQUEST_TIMEOUT_MS } from './request.js';
import { withRetries, type Classify, type RetryOptions } from './retry.js';
import { MANAGED_BY, rewriteKey } from './secret.js';
import { dnsLabel, dnsSubdomain, pgIdentifier, problemsOf, routingKey, secretKey } from './validate.js';

export const DEFAULT_DATABASE_URL_KEY = 'DATABASE_URL';
/** The admin connection's database when PGDATABASE is not set: the maintenance database, as createdb uses. */
export const DEFAULT_ADMIN_DATABASE = 'postgres';
/** A copy's `COMMENT ON DATABASE` starts with this; the rest is JSON (`DatabaseMarker`). */
export const MARKER_PREFIX = 'devstack:';

/** SQLSTATE 55006: `source database "x" is being accessed by other users`. */
const OBJECT_IN_USE = '55006';
/**
 * Another session created the database between this one's read and its create: SQLSTATE 42P04,
 * or 23505 on pg_database's name index when both creates ran at the same moment.
 */
const RACED = new Set(['42P04', '23505']);

/**
 * Attempts against a busy template or database: PostgreSQL itself waits up to 5 s for the other
 * sessions to leave before it refuses, so 12 attempts wait about a minute and a half in all.
 */
export const DEFAULT_PG_RETRY = Object.freeze({ attempts: 12, baseMs: 50, capMs: 2000 });

export interface PostgresConnection {
  /** The admin connection (node-postgres's fields; what is not given comes from PG* variables, as pg reads them). */
  connection?: ClientConfig | undefined;
  /** Per connection and per statement, in ms (default 30 000): a large template needs more. */
  requestTimeoutMs?: number | undefined;
  /** The largest Kubernetes API answer read, in bytes (default 8 MiB). */
  maxResponseBytes?: number | undefined;
  /** Busy templates are retried with these (default `DEFAULT_PG_RETRY`); Kubernetes conflicts with the tool's usual 30 attempts. */
  retry?: RetryOptions | undefined;
  log?: Logger | undefined;
}

export interface CreateDatabaseOptions extends PostgresConnection {
  /** The base's database: the copy's is `<database>_<key with - as _>`. */
  database: string;
  key: string;
  /** The database copied (default: `database` itself). */
  template?: string | undefined;
  /** The copy's owner (default: the template's owner, the app's role). */
  owner?: string | undefined;
  /** Rewrite the database URL in this secret of the copy (cloned from the base's) to the copy. */
  secret?: { kc: KubeTarget; namespace: string; name: string; key?: string | undefined } | undefined;
}

export interface DropDatabaseOptions extends PostgresConnection {
  database: string;
  key: string;
}

export interface DatabaseMarker {
  by: typeof MANAGED_BY;
  database: string;
  template: string;
  key: string;
}

export interface CreateDatabaseOutcome {
  name: string;
  template: string;
  owner: string;
  change: 'created' | 'updated' | 'unchanged';
  attempts: number;
  secret?: 'created' | 'updated' | 'unchanged';
}

/** `orders` + `feature-1` -> `orders_feature_1`: a name that needs no quoting where a team writes it by hand. */
export function copyDatabaseName(database: string, key: string): string {
  return `${database}_${key.replace(/-/g, '_')}`;
}

export function databaseMarker(marker: Omit<DatabaseMarker, 'by'>): string {
  return `${MARKER_PREFIX}${JSON.stringify({ by: MANAGED_BY, database: marker.database, template: marker.template, key: marker.key })}`;
}

/** The marker in a database's comment, or undefined when the comment is no marker of this tool's. */
export function markerOf(comment: string | null | undefined): DatabaseMarker | undefined {
  if (typeof comment !== 'string' || !comment.startsWith(MARKER_PREFIX)) return undefined;
  try {
    const m = JSON.parse(comment.slice(MARKER_PREFIX.length)) as Partial<DatabaseMarker> | null;
    if (m === null || typeof m !== 'object' || m.by !== MANAGED_BY || typeof m.database !== 'string' || typeof m.key !== 'string') return undefined;
    return { by: MANAGED_BY, database: m.database, template: typeof m.template === 'string' ? m.template : m.database, key: m.key };
  } catch {
    return undefined;
  }
}

/**
 * The database URL of the copy: a `postgres://` or `postgresql://` URL with its path (and a
 * `dbname` parameter, which libpq lets override it) set to `database`, or a libpq `key=value`
 * string with its `dbname`. Anything else is a `SecretValueError`, which does not show the value.
 */
export function databaseUrlFor(value: string, database: string, what: string): string {
  const trimmed = value.trim();
  if (/^postgres(ql)?:\/\//i.test(trimmed)) {
    let url: URL;
    try {
      url = new URL(trimmed);
    } catch (error) {
      throw new SecretValueError(`${what}: not a valid URL (the value is not shown)`, { cause: error });
    }
    url.pathname = `/${encodeURIComponent(database)}`;
    if (url.searchParams.has('dbname')) url.searchParams.set('dbname', database);
    return url.href;
  }
  if (/^[A-Za-z_]+\s*=/.test(trimmed)) {
    const dbname = /(^|\s)dbname\s*=\s*('(?:[^'\\]|\\.)*'|\S*)/;
    return dbname.test(trimmed) ? trimmed.replace(dbname, `$1dbname=${database}`) : `${trimmed} dbname=${database}`;
  }
  throw new SecretValueError(`${what}: neither a postgres:// URL nor a key=value connection string (the value is not shown)`);
}

function checkCommon(options: CreateDatabaseOptions | DropDatabaseOptions, problems: string[]): void {
  problems.push(...problemsOf([[routingKey, '--key', options.key], [pgIdentifier, '--database', options.database]]));
  if (problems.length === 0) problems.push(...problemsOf([[pgIdentifier, '--database', copyDatabaseName(options.database, options.key)]]).map((p) => `${p} (the copy's name)`));
  const admin = options.connection?.database;
  if (admin !== undefined && problems.length === 0 && admin === copyDatabaseName(options.database, options.key)) problems.push("PGDATABASE: the admin connection's database must not be the copy (use postgres)");
}

export function checkCreateDatabaseOptions(options: CreateDatabaseOptions): void {
  const problems: string[] = [];
  checkCommon(options, problems);
  problems.push(...problemsOf([[pgIdentifier, '--template', options.template], [pgIdentifier, '--owner', options.owner]]));
  const template = options.template ?? options.database;
  if (problems.length === 0 && template === copyDatabaseName(options.database, options.key)) problems.push('--template: must name another database than the copy');
  // A session on the template keeps CREATE DATABASE from copying it, this one's own included.
  if (options.connection?.database !== undefined && options.connection.database === template) problems.push(`PGDATABASE: the admin connection's database must not be the template (a session on it keeps it from being copied; use ${DEFAULT_ADMIN_DATABASE})`);
  const s = options.secret;
  if (s !== undefined) problems.push(...problemsOf([[dnsSubdomain, '--secret', s.name], [secretKey, '--secret-key', s.key], [dnsLabel, '--namespace', s.namespace]]));
  if (problems.length > 0) throw new ConfigError(problems);
}

export function checkDropDatabaseOptions(options: DropDatabaseOptions): void {
  const problems: string[] = [];
  checkCommon(options, problems);
  if (problems.length > 0) throw new ConfigError(problems);
}

type Pg = typeof PgModule;

/** Loaded by the `postgres` commands only. */
async function pgModule(): Promise<Pg> {
  const mod = (await import('pg')) as Pg & { default?: Pg };
  return mod.default ?? mod;
}

function failure(what: string, error: unknown, timeoutMs: number): DevstackError {
  if (error instanceof DevstackError) return error;
  const e = error as { code?: unknown; message?: unknown };
  const sqlState = typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code) ? e.code : undefined;
  const message = typeof e.message === 'string' ? e.message : String(error);
  const timedOut = sqlState === '57014' || /timeout/i.test(message);
  const detail = [sqlState === undefined && typeof e.code === 'string' ? e.code : undefined, message, timedOut ? `no answer within ${timeoutMs} ms (--request-timeout; a large template takes longer to copy)` : undefined].filter(Boolean).join(': ');
  return new PostgresCallError(what, sqlState, detail, { cause: error });
}

interface Session {
  client: Client;
  escape: (name: string) => string;
  literal: (text: string) => string;
  query<R extends Record<string, unknown>>(what: string, sql: string, values?: unknown[]): Promise<R[]>;
}

async function session<T>(options: PostgresConnection, run: (s: Session) => Promise<T>): Promise<T> {
  const pg = await pgModule();
  const timeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const client = new pg.Client({
    application_name: 'devstack-hooks',
    ...options.connection,
    connectionTimeoutMillis: timeoutMs,
    // The server stops the statement; the client stops waiting on a server that went silent.
    statement_timeout: timeoutMs,
    query_timeout: timeoutMs + 2000,
  });
  // A connection the server ends between statements is reported by the next query, not by a crash.
  client.on('error', () => undefined);
  const where = `${client.host ?? 'localhost'}:${client.port ?? 5432}`;
  try {
    await client.connect();
  } catch (error) {
    await client.end().catch(() => undefined);
    throw failure(`connect to PostgreSQL at ${where} as ${client.user ?? 'the default user'}`, error, timeoutMs);
  }
  try {
    return await run({
      client,
      escape: (name) => client.escapeIdentifier(name),
      literal: (text) => client.escapeLiteral(text),
      async query<R extends Record<string, unknown>>(what: string, sql: string, values?: unknown[]): Promise<R[]> {
        try {
          const result = await client.query(sql, values);
          if (!Array.isArray(result?.rows)) throw new PostgresCallError(what, undefined, 'the answer has no rows');
          return result.rows as R[];
        } catch (error) {
          throw failure(what, error, timeoutMs);
        }
      },
    });
  } finally {
    await client.end().catch(() => undefined);
  }
}

interface DatabaseRow {
  owner: string;
  comment: string | null;
}

async function databaseOf(s: Session, name: string): Promise<DatabaseRow | undefined> {
  const rows = await s.query(
    `read the database ${name}`,
    "SELECT r.rolname AS owner, pg_catalog.shobj_description(d.oid, 'pg_database') AS comment FROM pg_catalog.pg_database d JOIN pg_catalog.pg_roles r ON r.oid = d.datdba WHERE d.datname = $1",
    [name],
  );
  const row = rows[0];
  if (row === undefined) return undefined;
  if (typeof row['owner'] !== 'string' || (row['comment'] !== null && typeof row['comment'] !== 'string')) throw new PostgresCallError(`read the database ${name}`, undefined, 'an answer that is not pg_database');
  return { owner: row['owner'], comment: row['comment'] as string | null };
}

async function sessionsOn(s: Session, name: string): Promise<number | undefined> {
  try {
    const rows = await s.query(`count the sessions on ${name}`, 'SELECT count(*)::int AS n FROM pg_catalog.pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [name]);
    return typeof rows[0]?.['n'] === 'number' ? rows[0]['n'] : undefined;
  } catch {
    return undefined;
  }
}

/** Another job is between its CREATE DATABASE and its COMMENT: read again shortly. */
class MarkerPendingError extends DevstackError {
  constructor(name: string) {
    super('DEVSTACK_HOOK_NOT_OWNED', `the database ${name} was created at the same moment by another session and has no marker yet`);
  }
}

const classifyPg: Classify = (error) => {
  if (error instanceof PostgresCallError && error.sqlState === OBJECT_IN_USE) return { retry: true, why: 'the database is in use by other sessions (SQLSTATE 55006)' };
  if (error instanceof PostgresCallError && error.sqlState !== undefined && RACED.has(error.sqlState)) return { retry: true, why: `created by another session at the same moment (SQLSTATE ${error.sqlState})` };
  if (error instanceof MarkerPendingError) return { retry: true, why: 'created by another session at the same moment, not marked yet' };
  return { retry: false, why: '' };
};

function notOwned(name: string, row: DatabaseRow, options: { database: string; key: string }): NotOwnedError {
  const m = markerOf(row.comment);
  const whose = m === undefined ? `no ${MARKER_PREFIX} comment` : `made by devstack-hooks for --database ${m.database} --key ${m.key}`;
  return new NotOwnedError(`the database ${name} exists and was not made by devstack-hooks for --database ${options.database} --key ${options.key} (${whose}); it is left alone`);
}

const isOurs = (row: DatabaseRow, options: { database: string; key: string }) => {
  const m = markerOf(row.comment);
  return m !== undefined && m.database === options.database && m.key === options.key;
};

/**
 * The copy's database, `CREATE DATABASE <copy> TEMPLATE <template> OWNER <owner>`, marked as
 * this tool's by its comment; then, with `secret`, the URL in the copy's secret pointed at it. A
 * template in use by other sessions (PostgreSQL copies one only while no one else is connected to
 * it, and copies made at once from one template take turns) is retried with backoff, then a
 * `TemplateBusyError` that says so. A database of that name this tool did not make is refused.
 */
export async function createDatabase(options: CreateDatabaseOptions): Promise<CreateDatabaseOutcome> {
  checkCreateDatabaseOptions(options);
  const log = options.log ?? SILENT;
  const name = copyDatabaseName(options.database, options.key);
  const template = options.template ?? options.database;
  let attempts = 0;
  const outcome = await session(options, async (s) => {
    let raced = false;
    try {
      return await withRetries(
        `create the database ${name} from ${template}`,
        async (n) => {
          attempts = n;
          const existing = await databaseOf(s, name);
          if (existing !== undefined) {
            if (!isOurs(existing, options)) {
              if (raced && existing.comment === null) throw new MarkerPendingError(name);
              throw notOwned(name, existing, options);
            }
            if (options.owner === undefined || existing.owner === options.owner) return { owner: existing.owner, change: 'unchanged' as const };
            await s.query(`change the owner of ${name}`, `ALTER DATABASE ${s.escape(name)} OWNER TO ${s.escape(options.owner)}`);
            return { owner: options.owner, change: 'updated' as const };
          }
          const source = await databaseOf(s, template);
          if (source === undefined) throw new NotFoundError(`the template database ${template} does not exist`);
          const owner = options.owner ?? source.owner;
          try {
            await s.query(`create the database ${name} from ${template}`, `CREATE DATABASE ${s.escape(name)} TEMPLATE ${s.escape(template)} OWNER ${s.escape(owner)}`);
          } catch (error) {
            if (error instanceof PostgresCallError && error.sqlState !== undefined && RACED.has(error.sqlState)) raced = true;
            throw error;
          }
          // Not one statement with the create (CREATE DATABASE runs outside any transaction): a
          // job lost right here leaves a copy without its marker, which drop then refuses.
          await s.query(`mark the database ${name}`, `COMMENT ON DATABASE ${s.escape(name)} IS ${s.literal(databaseMarker({ database: options.database, template, key: options.key }))}`);
          return { owner, change: 'created' as const };
        },
        classifyPg,
        log,
        { ...DEFAULT_PG_RETRY, ...options.retry },
      );
    } catch (error) {
      if (error instanceof RetriesExhaustedError && error.cause instanceof PostgresCallError && error.cause.sqlState === OBJECT_IN_USE) {
        const sessions = await sessionsOn(s, template);
        throw new TemplateBusyError(
          `create the database ${name} from ${template}: the template stayed in use by other sessions through ${error.attempts} attempt${error.attempts === 1 ? '' : 's'} (${error.cause.message}${sessions === undefined ? '' : `; ${sessions} session(s) on ${template} now`}). PostgreSQL copies a template only while no one else is connected to it: give --template a database no app connects to, or let the base's connections to ${template} go while copies are made`,
          error.attempts,
          sessions,
          { cause: error },
        );
      }
      throw error;
    }
  });
  log.info('database', { database: name, template, owner: outcome.owner, change: outcome.change });
  const result: CreateDatabaseOutcome = { name, template, owner: outcome.owner, change: outcome.change, attempts };
  if (options.secret !== undefined) {
    const sec = options.secret;
    const key = sec.key ?? DEFAULT_DATABASE_URL_KEY;
    const store = secretStore(sec.kc, sec.namespace, options);
    const written = await rewriteKey(store, sec.name, key, (value) => databaseUrlFor(value, name, `${key} in ${store.describe(sec.name)}`), { namespace: sec.namespace, retry: options.retry, requestTimeoutMs: options.requestTimeoutMs, maxResponseBytes: options.maxResponseBytes, log });
    result.secret = written.change;
  }
  return result;
}

/**
 * Drops the copy's database when this tool made it for this database and key (its marker says
 * so), never another: connections are refused first, the open ones ended, then it is dropped. A
 * copy that is not there is `absent`.
 */
export async function dropDatabase(options: DropDatabaseOptions): Promise<{ name: string; change: 'dropped' | 'absent'; terminated: number }> {
  checkDropDatabaseOptions(options);
  const name = copyDatabaseName(options.database, options.key);
  let terminated = 0;
  const change = await session(options, (s) =>
    withRetries(
      `drop the database ${name}`,
      async () => {
        const existing = await databaseOf(s, name);
        if (existing === undefined) return 'absent' as const;
        if (!isOurs(existing, options)) throw notOwned(name, existing, options);
        // No new sessions (an app that reconnects at once), then end the open ones: DROP DATABASE
        // refuses while any is connected.
        await s.query(`refuse connections to ${name}`, `ALTER DATABASE ${s.escape(name)} WITH ALLOW_CONNECTIONS false`);
        const ended = await s.query(`end the sessions on ${name}`, 'SELECT pg_catalog.pg_terminate_backend(pid) AS ended FROM pg_catalog.pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [name]);
        terminated += ended.filter((r) => r['ended'] === true).length;
        await s.query(`drop the database ${name}`, `DROP DATABASE IF EXISTS ${s.escape(name)}`);
        return 'dropped' as const;
      },
      classifyPg,
      options.log ?? SILENT,
      { ...DEFAULT_PG_RETRY, ...options.retry },
    ),
  );
  return { name, change, terminated };
}
