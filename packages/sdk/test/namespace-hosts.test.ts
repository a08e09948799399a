/*
 * `<service>.<namespace>` names of the fleet's namespaces get the key in propagation-only mode: the
 * sidecar routes `http://orders.shop/`, so the SDK must send the key with it. A real node:http
 * server on 127.0.0.1 is reached under those names through a lookup that answers 127.0.0.1.
 * Patches globals: runs in its own process.
 */
import t from 'tap';
import http, { type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { execFileSync } from 'node:child_process';
import { init, isAllowedHost, withRoutingKey } from '@devstack/sdk';

const sdk = init({ namespaces: ['shop'], clusterDomain: 'corp.internal' });
t.teardown(() => sdk.close());

const server = http.createServer((req, res) => req.resume().on('end', () => res.end(JSON.stringify(req.headers))));
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
const port = (server.address() as AddressInfo).port;

type Lookup = (host: string, options: { all?: boolean }, cb: (...args: unknown[]) => void) => void;
const lookup: Lookup = (_host, options, cb) => (options.all ? cb(null, [{ address: '127.0.0.1', family: 4 }]) : cb(null, '127.0.0.1', 4));

function get(host: string): Promise<IncomingHttpHeaders> {
  return withRoutingKey('feature1', () =>
    new Promise((resolve, reject) => {
      http
        .get(`http://${host}:${port}/`, { lookup: lookup as never }, (res) => {
          let body = '';
          res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk)).on('end', () => resolve(JSON.parse(body) as IncomingHttpHeaders));
        })
        .on('error', reject);
    }),
  );
}

const ROWS: ReadonlyArray<readonly [string, boolean]> = [
  ['orders.shop', true],
  ['Orders.Shop.', true],
  ['orders.shop.svc', true],
  ['orders.shop.svc.corp.internal', true],
  ['orders.other', false],
  ['orders.shop.example.com', false],
  ['orders.shop.svc.evil.com', false],
  ['shop', true],
];

t.test('names in the fleet namespace get the key; the same name elsewhere does not', async (t) => {
  for (const [host, carries] of ROWS) {
    const headers = await get(host);
    t.equal(headers['uber-ctx-key'], carries ? 'feature1' : undefined, `${host}: plain header`);
    t.equal(headers['baggage'], carries ? 'uber-ctx-key=feature1' : undefined, `${host}: baggage`);
  }
});

t.test('register reads the namespaces from DEVSTACK_NAMESPACE, with no registry', async (t) => {
  const script = `
    import { isAllowedHost } from '@devstack/sdk';
    process.stdout.write(JSON.stringify(['orders.shop', 'orders.tools.svc', 'orders.other', 'orders.shop.svc.cluster.local'].map(isAllowedHost)));`;
  const run = (env: Record<string, string>) =>
    JSON.parse(execFileSync(process.execPath, ['--import', '@devstack/sdk/register', '--input-type=module', '-e', script], { cwd: import.meta.dirname, env: { ...process.env, DEVSTACK_REGISTRY: '', ...env } }).toString()) as boolean[];
  t.same(run({ DEVSTACK_NAMESPACE: 'shop,tools' }), [true, true, false, true]);
  t.same(run({ DEVSTACK_NAMESPACE: '' }), [false, true, false, true], 'none: only cluster-local names (.svc)');
});

t.test('isAllowedHost agrees', async (t) => {
  for (const [host, carries] of ROWS) t.equal(isAllowedHost(host), carries, host);
});
