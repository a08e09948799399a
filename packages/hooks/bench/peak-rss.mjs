#!/usr/bin/env node
/*
 * Peak RSS of the built commands (dist/) with a large Secret, each run in its own process under
 * /usr/bin/time, against @devstack/kube-fake in this process, over plain http and through an HTTPS
 * proxy in front of it (a pod speaks TLS to its API server). Run from the repository root after
 * `npm run build`:
 *
 *   node packages/hooks/bench/peak-rss.mjs [--mib 2] [--runs 3] [--only 'sns subscribe']
 *
 * Needs /usr/bin/time and openssl (for the proxy's certificate). Prints MiB, lowest-highest. The
 * `sns` commands run against fauxqs started here; the `postgres` ones against a PostgreSQL
 * started here as the tests start it (test/postgres-server.ts), skipped when none is installed,
 * with the copy's secret holding the large value and the database URL.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startFakeApiServer, TRAEFIK_RESOURCES } from '@devstack/kube-fake';
import { startFauxqs } from 'fauxqs';
import { SNSClient, CreateTopicCommand } from '@aws-sdk/client-sns';
import { postgresMissing, startPostgres } from '../test/postgres-server.ts';

const { values } = parseArgs({ options: { mib: { type: 'string', default: '2' }, runs: { type: 'string', default: '3' }, only: { type: 'string' } } });
const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'devstack-hooks-rss-'));
const NS = 'team-a';

const api = await startFakeApiServer({ customResources: [...TRAEFIK_RESOURCES], namespaces: [NS] });
const big = Buffer.alloc(Number(values.mib) * 1024 * 1024, 'x').toString('base64');
api.create({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'orders', namespace: NS }, type: 'Opaque', data: { BIG: big } });
const plain = await api.kubeconfig(join(dir, 'plain'), { namespace: NS });

const AWS = { AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test', AWS_REGION: 'us-east-1' };
const fauxqs = await startFauxqs({ port: 0, host: '127.0.0.1', logger: false });
fauxqs.createQueue('orders');
const snsClient = new SNSClient({ endpoint: fauxqs.address, region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
await snsClient.send(new CreateTopicCommand({ Name: 'events' }));
snsClient.destroy();

const teardowns = [];
const pgMissing = postgresMissing();
let pgEnv = {};
if (pgMissing === undefined) {
  const pg = await startPostgres({ teardown: (fn) => teardowns.push(fn) });
  await pg.query('postgres', 'CREATE ROLE app LOGIN');
  await pg.query('postgres', 'CREATE DATABASE orders OWNER app');
  await pg.query('orders', "CREATE TABLE items (id int PRIMARY KEY, name text); INSERT INTO items VALUES (1, 'apple')");
  pgEnv = pg.env;
  api.create({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'db-copy', namespace: NS }, type: 'Opaque', data: { BIG: big, DATABASE_URL: Buffer.from(`postgres://app@127.0.0.1:${pg.port}/orders`).toString('base64') } });
}

execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
const proxy = https.createServer({ key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) }, (req, res) => {
  const up = http.request({ host: '127.0.0.1', port: api.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
    res.writeHead(r.statusCode ?? 502, r.headers);
    r.pipe(res);
  });
  req.pipe(up);
});
await new Promise((resolve) => proxy.listen(0, '127.0.0.1', resolve));
const tls = join(dir, 'tls');
const ca = readFileSync(join(dir, 'cert.pem')).toString('base64');
writeFileSync(tls, `apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:${proxy.address().port}\n    certificate-authority-data: ${ca}\ncontexts:\n- name: c\n  context: {cluster: c, user: u, namespace: ${NS}}\ncurrent-context: c\nusers:\n- name: u\n  user: {token: t}\n`);

function peak(args) {
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/time', ['-f', '%M', process.execPath, CLI, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...AWS, ...pgEnv } });
    let err = '';
    child.stderr.setEncoding('utf8').on('data', (c) => (err += c));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(Number(err.trim().split('\n').at(-1)) / 1024) : reject(new Error(`${args.join(' ')}: exit ${code}: ${err}`))));
  });
}

const say = (line) => process.stdout.write(`${line}\n`);
let n = 0;
const copies = [];
const made = (key) => (copies.push(key), key);
const cases = [
  ['--help', () => ['--help'], false],
  ['ingressroute add', (kc) => ['ingressroute', 'add', '--kubeconfig', kc, '--name', `edge${n++}`, '--host', 'a.example', '--key', 'f1', '--service', 'web', '--create'], true],
  ['secret clone (created)', (kc) => ['secret', 'clone', '--kubeconfig', kc, '--from', 'orders', '--to', `copy${n++}`, '--key', 'f1'], true],
  ['secret clone (unchanged)', (kc) => ['secret', 'clone', '--kubeconfig', kc, '--from', 'orders', '--to', 'copy-same', '--key', 'f1', '--set', 'A=1'], true],
  ['secret clone (updated)', (kc) => ['secret', 'clone', '--kubeconfig', kc, '--from', 'orders', '--to', 'copy-same', '--key', 'f1', '--set', `A=${n++}`], true],
  ['secret update', (kc) => ['secret', 'update', '--kubeconfig', kc, '--name', 'orders', '--set', `A=${n++}`], true],
  ['sqs create --secret', (kc) => ['sqs', 'create', '--endpoint', fauxqs.address, '--queue', 'orders', '--key', `k${n++}`, '--kubeconfig', kc, '--secret', 'db-copy'], true],
  ['sns subscribe (created)', () => ['sns', 'subscribe', '--endpoint', fauxqs.address, '--topic', 'events', '--queue', 'orders', '--key', `k${n++}`], false],
  ['sns subscribe (unchanged)', () => ['sns', 'subscribe', '--endpoint', fauxqs.address, '--topic', 'events', '--queue', 'orders', '--key', 'same'], false],
  ['sns subscribe --secret', (kc) => ['sns', 'subscribe', '--endpoint', fauxqs.address, '--topic', 'events', '--queue', 'orders', '--key', `k${n++}`, '--kubeconfig', kc, '--secret', 'db-copy'], true],
  ...(pgMissing === undefined
    ? [
        ['postgres create --secret', (kc) => ['postgres', 'create', '--database', 'orders', '--key', made(`k${n++}`), '--kubeconfig', kc, '--secret', 'db-copy'], true],
        ['postgres create (unchanged)', () => ['postgres', 'create', '--database', 'orders', '--key', 'same'], false],
        ['postgres drop', () => ['postgres', 'drop', '--database', 'orders', '--key', copies.pop() ?? 'none'], false],
      ]
    : []),
];
try {
  await peak(cases[3][1](plain));
  await peak(['sns', 'subscribe', '--endpoint', fauxqs.address, '--topic', 'events', '--queue', 'orders', '--key', 'same']);
  if (pgMissing === undefined) await peak(['postgres', 'create', '--database', 'orders', '--key', 'same']);
  else say(`postgres: skipped (${pgMissing})`);
  say(`${values.mib} MiB secret, ${values.runs} runs each, peak RSS MiB (lowest-highest)\n`);
  say('command'.padEnd(30) + 'http'.padEnd(14) + 'https');
  for (const [name, args, kube] of cases.filter(([name]) => values.only === undefined || name.includes(values.only))) {
    const row = [];
    for (const kc of kube ? [plain, tls] : [plain]) {
      const seen = [];
      for (let i = 0; i < Number(values.runs); i++) seen.push(await peak(args(kc)));
      row.push(`${Math.min(...seen).toFixed(0)}-${Math.max(...seen).toFixed(0)}`);
    }
    say(name.padEnd(30) + row.map((r) => r.padEnd(14)).join(''));
  }
} finally {
  proxy.close();
  await api.close();
  await fauxqs.stop();
  for (const fn of teardowns.reverse()) await fn();
  rmSync(dir, { recursive: true, force: true });
}
