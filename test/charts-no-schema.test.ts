/*
 * The charts' own checks, without a schema: devstack-service rendered with
 * `--skip-schema-validation`, and the library chart in a team's chart of its own that has no schema
 * and no devstack defaults (made here in a temporary directory, with devstack-service's templates
 * and charts/devstack as its dependency). Every value that reaches a Traefik rule, a hook's command
 * line or a YAML scalar is refused by the templates, naming it; the schema still refuses the same
 * values first; valid values render in the team's chart as in devstack-service.
 */
import { cpSync, mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { LIBRARY_CHART, SERVICE_CHART, render, type K8sObject } from './helpers/charts.ts';

const IMAGE = { repository: 'registry.example/shop/web', tag: '1.4.2' };
const base = (devstack: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) => ({ service: 'web', image: IMAGE, ...extra, devstack });
const copy = (devstack: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) => base({ feature: 'feature1', ...devstack }, extra);
const edge = (more: Record<string, unknown> = {}) => ({ edge: { enabled: true, ...more } });
const shared = (more: Record<string, unknown> = {}) => ({ hooks: { sharedIngressRoute: { enabled: true, name: 'edge', ...more } } });
const secret = (entry: Record<string, unknown>) => ({ hooks: { secrets: [{ from: 'web', ...entry }] } });
const queue = (entry: Record<string, unknown>) => ({ hooks: { queues: [{ name: 'orders', ...entry }] } });

/** A team's chart: devstack-service's templates, the library as a file:// dependency, no schema, no values. */
function teamChart(): string {
  const dir = mkdtempSync(join(tmpdir(), 'devstack-team-chart-'));
  writeFileSync(join(dir, 'Chart.yaml'), [
    'apiVersion: v2', 'name: team-app', 'version: 1.0.0', 'dependencies:',
    `  - { name: devstack, version: 0.1.0, repository: "file://${LIBRARY_CHART}" }`, '',
  ].join('\n'));
  writeFileSync(join(dir, 'values.yaml'), '{}\n');
  cpSync(join(SERVICE_CHART, 'templates'), join(dir, 'templates'), { recursive: true });
  mkdirSync(join(dir, 'charts'));
  symlinkSync(LIBRARY_CHART, join(dir, 'charts/devstack'));
  return dir;
}
const TEAM = teamChart();
t.teardown(() => rmSync(TEAM, { recursive: true, force: true }));

type Mode = 'skip' | 'team' | 'schema';
const how: Record<Mode, { chart: string; args: string[] }> = {
  skip: { chart: SERVICE_CHART, args: ['--skip-schema-validation'] },
  team: { chart: TEAM, args: [] },
  schema: { chart: SERVICE_CHART, args: [] },
};
/** helm's error for these values, or 'rendered'. */
const refusal = (values: Record<string, unknown>, mode: Mode) =>
  render('web', { values, ...how[mode], kubeVersion: '1.30.0' }).then(() => 'rendered', (e: Error) => e.message);

/** Runs the functions a few at a time (each is one helm process). */
async function pooled<T>(jobs: (() => Promise<T>)[], width = 3): Promise<T[]> {
  const results: T[] = new Array<T>(jobs.length);
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const i = next++;
      results[i] = await jobs[i]!();
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, jobs.length) }, worker));
  return results;
}

interface Case {
  what: string;
  values: Record<string, unknown>;
  /** The templates' message. */
  refused: RegExp;
  /** Where it is tried: the library's values in the team's chart; devstack-service's own with --skip-schema-validation. */
  modes: Mode[];
  /** The schema's message, where it is tried with the schema too. */
  schema?: RegExp;
  /** What the message must not show. */
  hidden?: string;
}

const INJECTED_PULL_POLICY = 'Always\n          securityContext: {privileged: true}';
const CASES: Case[] = [
  // The three of the hostile probe.
  {
    what: 'a routing key that closes the Header matcher and adds PathPrefix(`/`): a catch-all route',
    values: copy({ feature: 'f1`) || PathPrefix(`/', ...edge() }), modes: ['skip', 'team', 'schema'],
    refused: /devstack\.feature: "f1`\) \|\| PathPrefix\(`\/" is not a routing key: a DNS-1123 label/, schema: /at '\/devstack\/feature'/,
  },
  {
    what: 'a hook pull policy that adds securityContext: {privileged: true} to the hook Job',
    values: copy({ hooks: { image: { pullPolicy: INJECTED_PULL_POLICY }, sharedIngressRoute: { enabled: true, name: 'edge' } } }), modes: ['skip', 'team', 'schema'],
    refused: /devstack\.hooks\.image\.pullPolicy: "Always\\n {10}securityContext: \{privileged: true\}" is not one of Always, IfNotPresent, Never/, schema: /at '\/devstack\/hooks\/image\/pullPolicy'/,
  },
  {
    what: 'edge.host com: a preview route for every *.com host',
    values: base(edge({ host: 'com' })), modes: ['skip', 'team', 'schema'],
    refused: /devstack\.edge\.host: "com" is not a host name of at least two DNS labels/, schema: /at '\/devstack\/edge\/host'/,
  },
  // Traefik rules.
  { what: 'a key name that closes the Header matcher', values: copy({ keyName: 'k`, `x`) || PathPrefix(`/', ...edge() }), modes: ['team'], refused: /devstack\.keyName: "k`, `x`\) \|\| PathPrefix\(`\/" is not an HTTP header name/ },
  { what: 'a key name in upper case', values: copy({ keyName: 'X-Key', ...edge() }), modes: ['team'], refused: /devstack\.keyName: "X-Key" is not an HTTP header name/ },
  { what: 'a host that closes the Host matcher', values: base(edge({ host: 'example.com`) || Host(`evil.com' })), modes: ['team'], refused: /devstack\.edge\.host: "example\.com`\) \|\| Host\(`evil\.com" is not a host name/ },
  { what: 'a host with a label of 64 characters', values: base(edge({ host: `${'a'.repeat(64)}.example.com` })), modes: ['team'], refused: /devstack\.edge\.host: "a{64}\.example\.com" is not a host name/ },
  { what: 'a shared route on the host com', values: copy(shared({ host: 'com' })), modes: ['team'], refused: /devstack\.hooks\.sharedIngressRoute\.host: "com" is not a host name of at least two DNS labels/ },
  { what: 'the reserved key base', values: base({ feature: 'base' }), modes: ['team'], refused: /devstack\.feature: "base" is not a routing key: it names the base lane/ },
  { what: 'a key in upper case', values: base({ feature: 'Feature1' }), modes: ['team'], refused: /devstack\.feature: "Feature1" is not a routing key/ },
  { what: 'a service name that is no DNS-1123 label', values: { ...base(), service: 'web"x' }, modes: ['team'], refused: /service: "web\\"x" is not a DNS-1123 label that starts with a letter/ },
  // YAML scalars.
  { what: 'a sidecar pull policy that adds fields to the sidecar', values: base({ sidecar: { image: { pullPolicy: INJECTED_PULL_POLICY } } }), modes: ['team'], refused: /devstack\.sidecar\.image\.pullPolicy: "Always\\n.*" is not one of Always, IfNotPresent, Never/ },
  { what: 'an app pull policy that adds fields to the app', values: { ...base(), image: { ...IMAGE, pullPolicy: INJECTED_PULL_POLICY } }, modes: ['skip'], refused: /image\.pullPolicy: "Always\\n.*" is not one of Always, IfNotPresent, Never/ },
  { what: 'a port that ends the flow mapping', values: base({ sidecar: { ports: { inbound: '15000, protocol: UDP }' } } }), modes: ['team'], refused: /devstack\.sidecar\.ports\.inbound: "15000, protocol: UDP }" is not a whole number from 1 to 65535/ },
  { what: 'an app port that is not whole', values: { ...base(), port: 80.5 }, modes: ['team'], refused: /port: 80\.5 is not a whole number from 1 to 65535/ },
  { what: 'replicas that add a field to the Deployment', values: { ...base(), replicas: '1\n  paused: true' }, modes: ['skip'], refused: /replicas: "1\\n {2}paused: true" is not a whole number from 0 up/ },
  { what: 'an API group that adds a document', values: base(edge({ apiGroup: 'x.io/v1"\nkind: ClusterRole' })), modes: ['team'], refused: /devstack\.edge\.apiGroup: "x\.io\/v1\\"\\nkind: ClusterRole" is not one of traefik\.io, traefik\.containo\.us/ },
  { what: 'an unknown Traefik version', values: base(edge({ traefik: 'v4' })), modes: ['team'], refused: /devstack\.edge\.traefik: "v4" is not one of v2, v3/ },
  { what: 'entry points as a string', values: base(edge({ entryPoints: 'web' })), modes: ['team'], refused: /devstack\.edge\.entryPoints: "web" is not a list of entry point names/ },
  { what: 'a preview auth that is not authentication', values: base(edge({ previewAuth: { redirectRegex: { regex: '.*', replacement: 'https://evil' } } })), modes: ['team'], refused: /devstack\.edge\.previewAuth: "redirectRegex" is not one of basicAuth, forwardAuth/ },
  { what: 'an image tag with a quote and a newline', values: base({ sidecar: { image: { tag: '1"\nx' } } }), modes: ['team'], refused: /devstack\.sidecar\.image\.tag: "1\\"\\nx" is not an image tag/ },
  { what: 'no app image', values: { service: 'web', devstack: {} }, modes: ['team'], refused: /image\.repository: the app's image is required/ },
  { what: 'strict as a string', values: base({ sidecar: { strict: 'yes' } }), modes: ['team'], refused: /devstack\.sidecar\.strict: "yes" is not true or false/ },
  { what: 'a registry mode the chart does not know', values: base({ registry: 'k8s' }), modes: ['team'], refused: /devstack\.registry: "k8s" is not one of relay, kubernetes/ },
  { what: 'a relay URL with a path', values: base({ relay: { url: 'http://relay:7400/v1/namespaces/x' } }), modes: ['team'], refused: /devstack\.relay\.url: "http:\/\/relay:7400\/v1\/namespaces\/x" is not an http:\/\/ or https:\/\/ origin/ },
  { what: 'a relay URL that adds an env field', values: base({ relay: { url: 'http://relay:7400"\n  valueFrom: x' } }), modes: ['team'], refused: /devstack\.relay\.url: .* is not an http:\/\/ or https:\/\/ origin/ },
  { what: 'a relay block that is a string', values: base({ relay: 'http://relay:7400' }), modes: ['team'], refused: /devstack\.relay: "http:\/\/relay:7400" is not a map/ },
  { what: 'proxyless as a string', values: base({ sdk: { inject: true, proxyless: 'yes' } }), modes: ['team'], refused: /devstack\.sdk\.proxyless: "yes" is not true or false/ },
  { what: 'unknown targets', values: base({ sidecar: { targets: 'all' } }), modes: ['team'], refused: /devstack\.sidecar\.targets: "all" is not one of service, endpoints/ },
  { what: 'a resources block with container fields', values: base({ sidecar: { resources: { limits: { memory: '1Gi' }, privileged: true } } }), modes: ['team'], refused: /devstack\.sidecar\.resources: "privileged" is not one of requests, limits, claims/ },
  { what: 'env entries that are strings', values: base({ sidecar: { env: ['A=b'] } }), modes: ['team'], refused: /devstack\.sidecar\.env\[0\]: an env entry is a map with a name, not "A=b"/ },
  { what: 'a sidecar block that is a string', values: base({ sidecar: 'off' }), modes: ['team'], refused: /devstack\.sidecar: "off" is not a map/ },
  { what: 'a TTL kube-janitor cannot read', values: copy({ ttl: '6 hours' }), modes: ['team'], refused: /devstack\.ttl: "6 hours" is not a kube-janitor TTL/ },
  // Hooks: names and options of their command lines, their Jobs' settings.
  { what: 'a shared route name that reads as an option', values: copy(shared({ name: '--create' })), modes: ['team'], refused: /devstack\.hooks\.sharedIngressRoute\.name: "--create" is not a Kubernetes object name/ },
  { what: 'a base secret that reads as an option', values: copy(secret({ from: '--to=web' })), modes: ['team'], refused: /devstack\.hooks\.secrets\[0\]\.from: "--to=web" is not a Kubernetes object name/ },
  { what: 'a secret value that is not a string, and is not shown', values: copy(secret({ set: { PASSWORD: 73519246 } })), modes: ['team'], refused: /devstack\.hooks\.secrets\[0\]\.set\.PASSWORD: the value is a float64, not a string/, hidden: '73519246' },
  { what: 'a queue name with a space', values: copy(queue({ name: 'orders --region x' })), modes: ['team'], refused: /devstack\.hooks\.queues\[0\]\.name: "orders --region x" is not an SQS queue name/ },
  { what: 'a queue endpoint that is no URL', values: copy(queue({ endpoint: '--region=us-east-1' })), modes: ['team'], refused: /devstack\.hooks\.queues\[0\]\.endpoint: "--region=us-east-1" is not an http:\/\/ or https:\/\/ URL/ },
  { what: 'a backoff limit that is not a number', values: copy({ hooks: { backoffLimit: 'lots', ...shared().hooks } }), modes: ['team'], refused: /devstack\.hooks\.backoffLimit: "lots" is not a whole number from 0 to 10/ },
  { what: 'a ServiceAccount annotation that replaces the hook delete policy', values: copy({ hooks: { serviceAccount: { annotations: { 'helm.sh/hook-delete-policy': 'before-hook-creation' } }, ...shared().hooks } }), modes: ['team'], refused: /devstack\.hooks\.serviceAccount\.annotations: "helm\.sh\/hook-delete-policy" is set by the chart/ },
];

t.test('hostile values are refused by the templates, without the schema and in a chart of its own', async (t) => {
  const runs = CASES.flatMap((c) => c.modes.map((mode) => ({ c, mode })));
  const errors = await pooled(runs.map(({ c, mode }) => () => refusal(c.values, mode)));
  for (const [i, { c, mode }] of runs.entries()) {
    const error = errors[i]!;
    const where = { skip: 'devstack-service --skip-schema-validation', team: 'a team chart without schema', schema: 'devstack-service with its schema' }[mode];
    t.match(error, mode === 'schema' ? c.schema! : c.refused, `${where}: ${c.what}`);
    if (c.hidden) t.notMatch(error, c.hidden, `${where}: the message does not show the value`);
  }
});

/** An object without the chart label, which names the chart (devstack-service or the team's). */
function unlabelled(objects: K8sObject[]): unknown {
  return JSON.parse(JSON.stringify(objects), (key, value: unknown) => (key === 'helm.sh/chart' ? undefined : value));
}

t.test('valid values render in a team chart without schema as in devstack-service', async (t) => {
  const every = {
    secrets: [{ from: 'web', set: { MODE: 'preview' } }, { from: 'payments', to: 'web-payments-feature1' }],
    queues: [{ name: 'orders.fifo', attributes: { VisibilityTimeout: 60 }, secret: 'web-feature1', secretKey: 'ORDERS_QUEUE_URL', endpoint: 'http://localstack:4566', region: 'eu-west-1' }],
    sharedIngressRoute: { enabled: true, name: 'edge', host: 'shop.example.com', port: 'http', priority: 300, create: true },
    serviceAccount: { annotations: { 'eks.amazonaws.com/role-arn': 'arn:aws:iam::1:role/hooks' } },
  };
  const sets = [
    { ...base(edge()), replicas: 1 },
    { ...base({ registry: 'kubernetes', relay: { url: 'http://relay.devstack:7400' } }), workload: 'worker', replicas: 1 },
    { ...copy({ ttl: '6h', keyName: 'x-ctx', sidecar: { native: true }, hooks: every, ...edge({ traefik: 'v2', host: 'shop.example.co.uk', previewAuth: { basicAuth: { secret: 'users' } } }) }, { appProtocol: 'grpc', port: 50051 }), replicas: 2 },
  ];
  const rendered = await pooled(sets.flatMap((values) => [SERVICE_CHART, TEAM].map((chart) => () => render('web', { values, chart, kubeVersion: '1.30.0' }))));
  for (const [i, values] of sets.entries()) {
    const [service, team] = [rendered[2 * i]!, rendered[2 * i + 1]!];
    t.ok(service.length >= 3, `set ${i}: ${service.length} objects from devstack-service`);
    t.same(unlabelled(team), unlabelled(service), `set ${i} (${values.devstack.feature ?? 'base'}): the same objects from the team's chart, the library's defaults standing in for devstack-service's values.yaml`);
  }
});
