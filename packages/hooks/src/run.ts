import { readFileSync } from 'node:fs';
import { ConfigError, DevstackError } from '@devstack/core';
import { load as parseYaml } from 'js-yaml';
import { parseCommandLine, type Invocation } from './args.js';
import { connectionFromKubeConfig, inClusterConnection, kubeconfigConnection, namespaceOf, type KubeConnection } from './connection.js';
import { NoCredentialsError } from './errors.js';
import { addIngressRoute, checkAddOptions, checkRemoveOptions, removeIngressRoute, type AddIngressRouteOptions } from './ingressroute.js';
import type { TraefikApiGroup } from './kube.js';
import { createLogger, type Logger } from './log.js';
import { DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_REQUEST_TIMEOUT_MS } from './request.js';
import type { RuleSyntax, ServiceScheme } from './routes.js';
import { checkCloneOptions, checkUpdateOptions, cloneSecret, updateSecret } from './secret.js';
import { checkCreateQueueOptions, checkDeleteQueueOptions, createQueue, deleteQueue, type CreateQueueOptions } from './sqs.js';
import { checkSubscribeOptions, checkTopicOptions, createTopic, deleteTopic, subscribeQueue, unsubscribeQueue, type CreateTopicOptions, type SubscribeOptions } from './sns.js';
import { checkCreateDatabaseOptions, checkDropDatabaseOptions, createDatabase, DEFAULT_ADMIN_DATABASE, dropDatabase, type CreateDatabaseOptions } from './postgres.js';
import type { ClientConfig } from 'pg';

export interface Io {
  env: Readonly<Record<string, string | undefined>>;
  out: (text: string) => void;
  err: (text: string) => void;
}

/** Checked before anything is loaded or sent; a namespace not given yet is checked as `default`. */
const PLACEHOLDER_NS = 'default';

function number(flag: string, raw: string | undefined, problems: string[]): number | undefined {
  if (raw === undefined) return undefined;
  if (!/^[0-9]{1,10}$/.test(raw)) {
    problems.push(`--${flag}: expected a whole number, got ${JSON.stringify(raw.slice(0, 20))}`);
    return undefined;
  }
  return Number(raw);
}

/** `30s`, `500ms`, `2m`, or seconds alone, as kubectl's `--request-timeout` takes it; 1 ms to 10 min. */
export function parseDuration(flag: string, raw: string | undefined, fallback: number, problems: string[]): number {
  if (raw === undefined) return fallback;
  const m = /^([0-9]{1,7}(?:\.[0-9]{1,3})?)(ms|s|m)?$/.exec(raw.trim());
  const ms = m === null ? NaN : Math.round(Number(m[1]) * (m[2] === 'ms' ? 1 : m[2] === 'm' ? 60_000 : 1000));
  if (!(ms >= 1 && ms <= 600_000)) problems.push(`--${flag}: expected a duration from 1ms to 10m, such as 30s, 500ms or 2m`);
  return ms;
}

/** `8Mi`, `512Ki` or bytes alone, as Kubernetes writes quantities; 1 KiB to 1 GiB. */
export function parseSize(flag: string, raw: string | undefined, fallback: number, problems: string[]): number {
  if (raw === undefined) return fallback;
  const m = /^([0-9]{1,10})(Ki|Mi|Gi)?$/.exec(raw.trim());
  const bytes = m === null ? NaN : Number(m[1]) * (m[2] === 'Ki' ? 1024 : m[2] === 'Mi' ? 1024 ** 2 : m[2] === 'Gi' ? 1024 ** 3 : 1);
  if (!(bytes >= 1024 && bytes <= 1024 ** 3)) problems.push(`--${flag}: expected a size from 1Ki to 1Gi, such as 8Mi, 512Ki or a number of bytes`);
  return bytes;
}

function attributes(raw: string | undefined, problems: string[]): Record<string, string> | undefined {
  if (raw === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    // The parser's message quotes the text, which is not ours to echo.
    problems.push('--attributes: not JSON');
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    problems.push('--attributes: expected a JSON object of attribute names and values');
    return undefined;
  }
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(parsed)) {
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') out[k] = String(v);
    else problems.push(`--attributes: ${JSON.stringify(k)} must be a string, number or boolean`);
  }
  return out;
}

const SSL_MODES: Record<string, ClientConfig['ssl']> = { disable: false, allow: false, prefer: true, require: true, 'verify-ca': true, 'verify-full': true, 'no-verify': { rejectUnauthorized: false } };

/**
 * The admin connection from the libpq variables, read as node-postgres reads them (PGSSLMODE
 * included: `require` verifies the certificate, `no-verify` does not), from the command's
 * environment. PGDATABASE defaults to the maintenance database, as createdb's does: never the
 * template, which a session of this command's own would keep from being copied.
 */
export function pgConnection(env: Io['env'], problems: string[]): ClientConfig {
  const port = env['PGPORT'] || undefined;
  if (port !== undefined && !(/^[0-9]{1,5}$/.test(port) && Number(port) >= 1 && Number(port) <= 65535)) problems.push('PGPORT: expected a port from 1 to 65535');
  const mode = env['PGSSLMODE'] || undefined;
  if (mode !== undefined && !(mode in SSL_MODES)) problems.push(`PGSSLMODE: expected one of ${Object.keys(SSL_MODES).join(', ')}`);
  return {
    host: env['PGHOST'] || undefined,
    port: port === undefined ? undefined : Number(port),
    user: env['PGUSER'] || undefined,
    password: env['PGPASSWORD'],
    database: env['PGDATABASE'] || DEFAULT_ADMIN_DATABASE,
    ssl: mode === undefined ? false : SSL_MODES[mode],
  };
}

type Plan = { check(): void; needsKube: boolean; run(kc: KubeConnection | undefined, namespace: string, log: Logger): Promise<Record<string, unknown>> };

/** Options from flags, checked by the same functions the library runs; no I/O here. */
function plan(inv: Invocation, env: Io['env'], problems: string[]): Plan {
  const v = inv.values;
  const key = v['key']!;
  const given = v['namespace'];
  const requestTimeoutMs = parseDuration('request-timeout', v['request-timeout'], DEFAULT_REQUEST_TIMEOUT_MS, problems);
  const maxResponseBytes = parseSize('max-response-size', v['max-response-size'], DEFAULT_MAX_RESPONSE_BYTES, problems);
  const limits = { requestTimeoutMs, maxResponseBytes };
  switch (inv.command) {
    case 'ingressroute add': {
      const options = (namespace: string): AddIngressRouteOptions => ({
        name: v['name']!, namespace, key, host: v['host']!, service: v['service']!, port: v['port'],
        traefik: v['traefik'] as RuleSyntax | undefined, apiGroup: v['api-group'] as TraefikApiGroup | undefined,
        keyName: v['key-name'], priority: number('priority', v['priority'], problems), scheme: v['scheme'] as ServiceScheme | undefined, create: inv.booleans['create'], ...limits,
      });
      return { needsKube: true, check: () => checkAddOptions(options(given ?? PLACEHOLDER_NS)), run: async (kc, ns, log) => ({ ...(await addIngressRoute(kc!, { ...options(ns), log })) }) };
    }
    case 'ingressroute remove': {
      const options = (namespace: string) => ({ name: v['name']!, namespace, key, apiGroup: v['api-group'] as TraefikApiGroup | undefined, ...limits });
      return { needsKube: true, check: () => checkRemoveOptions(options(given ?? PLACEHOLDER_NS)), run: async (kc, ns, log) => ({ ...(await removeIngressRoute(kc!, { ...options(ns), log })) }) };
    }
    case 'secret clone': {
      const options = (namespace: string) => ({ from: v['from']!, to: v['to']!, key, service: v['service'], ttl: v['ttl'], set: inv.pairs['set'], namespace, ...limits });
      return { needsKube: true, check: () => checkCloneOptions(options(given ?? PLACEHOLDER_NS)), run: async (kc, ns, log) => ({ secret: v['to'], ...(await cloneSecret(kc!, { ...options(ns), log })) }) };
    }
    case 'secret update': {
      const options = (namespace: string) => ({ name: v['name']!, set: inv.pairs['set'], namespace, ...limits });
      return { needsKube: true, check: () => checkUpdateOptions(options(given ?? PLACEHOLDER_NS)), run: async (kc, ns, log) => ({ secret: v['name'], ...(await updateSecret(kc!, { ...options(ns), log })) }) };
    }
    case 'sqs create': {
      const attrs = attributes(v['attributes'], problems);
      const secret = v['secret'];
      const options = (kc: KubeConnection | undefined, namespace: string): CreateQueueOptions => ({
        queue: v['queue']!, key, endpoint: v['endpoint'], region: v['region'], attributes: attrs, ...limits,
        secret: secret === undefined ? undefined : { kc: kc!, namespace, name: secret, key: v['secret-key'] },
      });
      return { needsKube: secret !== undefined, check: () => checkCreateQueueOptions(options(undefined, given ?? PLACEHOLDER_NS)), run: async (kc, ns, log) => ({ ...(await createQueue({ ...options(kc, ns), log })) }) };
    }
    case 'sqs delete': {
      const options = { queue: v['queue']!, key, endpoint: v['endpoint'], region: v['region'], requestTimeoutMs };
      return { needsKube: false, check: () => checkDeleteQueueOptions(options), run: async () => ({ ...(await deleteQueue(options)) }) };
    }
    case 'sns subscribe': {
      const attrs = attributes(v['attributes'], problems);
      const secret = v['secret'];
      const options = (kc: KubeConnection | undefined, namespace: string): SubscribeOptions => ({
        topic: v['topic']!, queue: v['queue']!, key, keyName: v['key-name'], endpoint: v['endpoint'], region: v['region'], attributes: attrs, ...limits,
        secret: secret === undefined ? undefined : { kc: kc!, namespace, name: secret, key: v['secret-key'] },
      });
      return { needsKube: secret !== undefined, check: () => checkSubscribeOptions(options(undefined, given ?? PLACEHOLDER_NS)), run: async (kc, ns, log) => ({ ...(await subscribeQueue({ ...options(kc, ns), log })) }) };
    }
    case 'sns unsubscribe': {
      const options = { topic: v['topic']!, queue: v['queue']!, key, endpoint: v['endpoint'], region: v['region'], requestTimeoutMs };
      return { needsKube: false, check: () => checkSubscribeOptions(options), run: async (_kc, _ns, log) => ({ ...(await unsubscribeQueue({ ...options, log })) }) };
    }
    case 'sns create': {
      const attrs = attributes(v['attributes'], problems);
      const secret = v['secret'];
      const options = (kc: KubeConnection | undefined, namespace: string): CreateTopicOptions => ({
        topic: v['topic']!, key, endpoint: v['endpoint'], region: v['region'], attributes: attrs, ...limits,
        secret: secret === undefined ? undefined : { kc: kc!, namespace, name: secret, key: v['secret-key'] },
      });
      return { needsKube: secret !== undefined, check: () => checkTopicOptions(options(undefined, given ?? PLACEHOLDER_NS)), run: async (kc, ns, log) => ({ ...(await createTopic({ ...options(kc, ns), log })) }) };
    }
    case 'sns delete': {
      const options = { topic: v['topic']!, key, endpoint: v['endpoint'], region: v['region'], requestTimeoutMs };
      return { needsKube: false, check: () => checkTopicOptions(options), run: async (_kc, _ns, log) => ({ ...(await deleteTopic({ ...options, log })) }) };
    }
    case 'postgres create': {
      const connection = pgConnection(env, problems);
      const secret = v['secret'];
      const options = (kc: KubeConnection | undefined, namespace: string): CreateDatabaseOptions => ({
        database: v['database']!, key, template: v['template'], owner: v['owner'], connection, ...limits,
        secret: secret === undefined ? undefined : { kc: kc!, namespace, name: secret, key: v['secret-key'] },
      });
      return { needsKube: secret !== undefined, check: () => checkCreateDatabaseOptions(options(undefined, given ?? PLACEHOLDER_NS)), run: async (kc, ns, log) => ({ ...(await createDatabase({ ...options(kc, ns), log })) }) };
    }
    default: {
      const options = { database: v['database']!, key, connection: pgConnection(env, problems), requestTimeoutMs };
      return { needsKube: false, check: () => checkDropDatabaseOptions(options), run: async (_kc, _ns, log) => ({ ...(await dropDatabase({ ...options, log })) }) };
    }
  }
}

/**
 * The connection, without loading @kubernetes/client-node when the kubeconfig holds only what a
 * Job or a test has (a server, a CA, certificates, a token): in a pod, the service account. A
 * kubeconfig with more (exec plugins, auth providers, proxies) goes through client-node.
 */
async function connect(path: string | undefined, env: Io['env']): Promise<KubeConnection> {
  // client-node's in-cluster loading does not fail outside a pod: it yields `https://undefined`,
  // and every request would then be retried as a lost connection.
  if (path === undefined && !env['KUBECONFIG'] && !env['KUBERNETES_SERVICE_HOST']) {
    throw new NoCredentialsError('no Kubernetes credentials: no --kubeconfig, no KUBECONFIG, and not in a pod (KUBERNETES_SERVICE_HOST is not set)');
  }
  const file = path ?? (env['KUBECONFIG'] ? env['KUBECONFIG'].split(':')[0] : undefined);
  try {
    if (file === undefined) return inClusterConnection(env);
    const lean = kubeconfigConnection(file, readFileSync(file, 'utf8'), undefined, (text) => parseYaml(text));
    if (lean !== undefined) return lean;
    const { loadKubeConfig } = await import('@devstack/registry-kubernetes');
    return await connectionFromKubeConfig(loadKubeConfig({ kubeconfig: file, env }));
  } catch (error) {
    throw new NoCredentialsError(`no Kubernetes credentials: ${credentialProblem(error)} (give --kubeconfig, set KUBECONFIG, or run in a pod with a service account)`, { cause: error });
  }
}

/**
 * A YAML parser's message quotes the lines around the fault, and a kubeconfig's lines hold tokens
 * and keys: only the reason and the position are told.
 */
function credentialProblem(error: unknown): string {
  const e = error as { name?: string; reason?: unknown; mark?: { line?: unknown; column?: unknown }; message?: string };
  if (e.name === 'YAMLException') {
    const at = typeof e.mark?.line === 'number' && typeof e.mark.column === 'number' ? ` at line ${e.mark.line + 1}, column ${e.mark.column + 1}` : '';
    return `the kubeconfig is not YAML${typeof e.reason === 'string' ? ` (${e.reason}${at})` : at}`;
  }
  return e.message ?? String(error);
}

/**
 * The command: 0 done, 1 a failure it explains, 2 a usage error. Everything that can be refused
 * (flags, the routing key, names that go into rules and labels) is refused before credentials are
 * loaded or a request is made.
 */
export async function main(argv: readonly string[], io: Io): Promise<number> {
  const parsed = parseCommandLine(argv, io.env);
  if (parsed.kind === 'help') {
    io.out(parsed.text);
    return 0;
  }
  if (parsed.kind === 'version') {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    io.out(`${pkg.version}\n`);
    return 0;
  }
  const usage = (command: string | undefined, problems: readonly string[]) => {
    for (const problem of problems) io.err(`devstack-hooks: ${problem}\n`);
    io.err(`Run devstack-hooks ${command === undefined ? '' : `${command} `}--help for usage.\n`);
    return 2;
  };
  if (parsed.kind === 'error') return usage(parsed.command, parsed.problems);
  const { invocation } = parsed;
  const problems: string[] = [];
  const steps = plan(invocation, io.env, problems);
  try {
    steps.check();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    problems.push(...error.problems);
  }
  if (problems.length > 0) return usage(invocation.command, problems);

  const log = createLogger({ command: invocation.command }, io.out, io.err);
  try {
    const kc = steps.needsKube ? await connect(invocation.values['kubeconfig'], io.env) : undefined;
    const namespace = invocation.values['namespace'] ?? (kc === undefined ? PLACEHOLDER_NS : namespaceOf(kc));
    const outcome = await steps.run(kc, namespace, log);
    log.info('done', { ...(steps.needsKube ? { namespace } : {}), ...outcome });
    return 0;
  } catch (error) {
    if (error instanceof ConfigError) return usage(invocation.command, error.problems);
    if (error instanceof DevstackError) {
      log.error('failed', { code: error.code, error: error.message });
      return 1;
    }
    log.error('failed', { code: 'DEVSTACK_HOOK_UNEXPECTED', error: (error as Error).stack ?? String(error) });
    return 1;
  }
}
