/*
 * One routing step over gRPC: the conformance table of conformance.test.ts, as real @grpc/grpc-js
 * unary calls, run against the sidecar's outbound listener (the service named in the
 * `:authority`, the key's carriers sent as metadata) and against the SDK's proxyless mode (a
 * `grpcClientOptions` client called from inside a front service whose `grpcServerInterceptor`
 * read the carriers from the metadata of its own inbound call). Both must agree on the upstream
 * that answered or the refusal (gRPC status and the devstack code leading the details), the key
 * the upstream received in `uber-ctx-key` and in `baggage`, and the `x-devstack-lane` of the
 * answer: both implementations expose it, in the response metadata, or in the status metadata
 * of a trailers-only answer.
 *
 * The SDK patches process-wide hooks: this file runs in its own process, the sidecar rows first,
 * with no SDK initialised, so nothing of the SDK can act on the sidecar's own calls.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import t from 'tap';
import { FileSource } from '@devstack/registry-file';
import { Sidecar, createLogger } from '@devstack/sidecar';
import { init } from '@devstack/sdk';
import { grpcClientOptions, grpcServerInterceptor } from '@devstack/sdk/grpc';
import { rows as httpRows, type Row } from './helpers/conformance-rows.ts';
import { unaryMethod } from './helpers/grpc-json.ts';
import type { Test } from './helpers/tap.ts';

const LANE = 'x-devstack-lane';
const KEY = 'uber-ctx-key';

// Written from the contract (README tables), not read from either implementation's own mapping,
// so that a mapping that drifts fails here.
const GRPC_STATUS_OF_CODE: Readonly<Record<string, grpc.status>> = {
  DEVSTACK_UNKNOWN_SERVICE: grpc.status.UNIMPLEMENTED,
  DEVSTACK_NO_FEATURE_COPY: grpc.status.UNAVAILABLE,
  DEVSTACK_NO_READY_UPSTREAM: grpc.status.UNAVAILABLE,
  DEVSTACK_UPSTREAM_UNREACHABLE: grpc.status.UNAVAILABLE,
};

const rows: readonly Row[] = [
  ...httpRows,
  // Over HTTP an unknown service is a plain 404 the SDK never sees (it does not route such calls);
  // a grpcClientOptions client names a service by construction, so the SDK must refuse it as the sidecar does.
  { name: 'unknown service', host: 'nowhere', carriers: { [KEY]: 'f1' }, expect: 'DEVSTACK_UNKNOWN_SERVICE', status: 404, lane: 'none', service: 'none' },
];

interface Outcome {
  /** The upstream that answered, or the devstack code leading the details of the status. */
  got: string;
  code: grpc.status;
  /** Every `x-devstack-lane` value of the answer. */
  lanes: string[];
  /** Every `uber-ctx-key` metadata value the upstream received. */
  plain: string[];
  /** Every `uber-ctx-key` entry of the `baggage` the upstream received. */
  baggage: string[];
}

const UPSTREAM = { call: unaryMethod('/devstack.conformance.Upstream/Call') } satisfies grpc.ServiceDefinition;
const FRONT = { call: unaryMethod('/devstack.conformance.Front/Call') } satisfies grpc.ServiceDefinition;
const UpstreamClient = grpc.makeGenericClientConstructor(UPSTREAM, 'Upstream');
const FrontClient = grpc.makeGenericClientConstructor(FRONT, 'Front');
type Callable = grpc.Client & { call: (...args: unknown[]) => grpc.ClientUnaryCall };

interface Seen {
  name: string;
  plain: string[];
  baggage: string[];
}

// The test's own clients never go through a proxy from the environment.
const NO_PROXY: grpc.ChannelOptions = { 'grpc.enable_http_proxy': 0 };
const insecure = grpc.credentials.createInsecure();
// A bound on every call, so a call that never ends fails its row instead of the whole file.
const deadline = (): number => Date.now() + 20_000;

function baggageKeys(values: readonly string[]): string[] {
  const out: string[] = [];
  for (const value of values) for (const m of value.matchAll(/(?:^|,)\s*uber-ctx-key=([^,;]*)/g)) out.push(m[1]!.trim());
  return out;
}

function lanesOf(metadata: grpc.Metadata | undefined): string[] {
  return (metadata?.get(LANE) ?? []).map(String);
}

/** One unary call to `Upstream/Call`, as the outcome the table is written in. */
function callUpstream(client: Callable, metadata: grpc.Metadata): Promise<Outcome> {
  return new Promise((resolve) => {
    let headers: grpc.Metadata | undefined;
    const call = client.call({}, metadata, { deadline: deadline() }, (error: grpc.ServiceError | null, seen?: Seen) => {
      if (error !== null) {
        // A trailers-only answer has no response headers: its one header block is the status metadata.
        const code = /^(DEVSTACK_[A-Z_]+):/.exec(error.details)?.[1] ?? `(details: ${JSON.stringify(error.details)})`;
        resolve({ got: code, code: error.code, lanes: lanesOf(headers ?? error.metadata), plain: [], baggage: [] });
        return;
      }
      resolve({ got: seen!.name, code: grpc.status.OK, lanes: lanesOf(headers), plain: seen!.plain, baggage: seen!.baggage });
    });
    call.on('metadata', (m: grpc.Metadata) => (headers = m));
  });
}

function metadataOf(carriers: Record<string, string>): grpc.Metadata {
  const md = new grpc.Metadata();
  for (const [name, value] of Object.entries(carriers)) md.set(name, value);
  return md;
}

const configOf = (row: Row): string => `${row.defaultKey ?? ''}/${row.strict === true}`;

async function bind(server: grpc.Server): Promise<string> {
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, p) => (error ? reject(error) : resolve(p))));
  return `127.0.0.1:${port}`;
}


/** The upstreams the table is written for, each a grpc-js server naming itself, and their registry file. */
async function fleet(t: Test): Promise<string> {
  const servers: grpc.Server[] = [];
  t.teardown(() => servers.forEach((s) => s.forceShutdown()));
  const upstream = async (name: string, ready = true): Promise<{ url: string; protocol: 'h2c'; ready: boolean }> => {
    const server = new grpc.Server();
    server.addService(UPSTREAM, {
      call: (call: grpc.ServerUnaryCall<unknown, Seen>, done: grpc.sendUnaryData<Seen>) => {
        done(null, { name, plain: call.metadata.get(KEY).map(String), baggage: baggageKeys(call.metadata.get('baggage').map(String)) });
      },
    });
    servers.push(server);
    return { url: `http://${await bind(server)}`, protocol: 'h2c', ready };
  };
  const registry = join(t.testdir(), 'registry.json');
  writeFileSync(
    registry,
    JSON.stringify({
      services: {
        web: { base: await upstream('web'), features: { f1: await upstream('web-f1') } },
        orders: { base: await upstream('orders'), features: { f2: await upstream('orders-f2'), parked: await upstream('orders-parked', false) } },
        idle: { base: await upstream('idle', false) },
        // Port 1: privileged, so no test's listen(0) can be handed it while files run in parallel.
        gone: { base: { url: 'http://127.0.0.1:1', protocol: 'h2c' } },
      },
    }),
  );
  return registry;
}

function expectRow(t: Test, row: Row, out: Outcome, what: string): void {
  const ok = row.status === 200;
  t.equal(out.got, row.expect, `${what}: target or refusal`);
  t.equal(out.code, ok ? grpc.status.OK : GRPC_STATUS_OF_CODE[row.expect], `${what}: gRPC status ${ok ? 'OK' : grpc.status[GRPC_STATUS_OF_CODE[row.expect]!]}`);
  t.same(out.lanes, [row.lane], `${what}: lane`);
  if (ok) {
    const key = row.key === undefined ? [] : [row.key];
    t.same(out.plain, key, `${what}: key carried on (plain metadata)`);
    t.same(out.baggage, key, `${what}: key carried on (baggage)`);
  }
}

const observed = { sidecar: new Map<Row, Outcome>(), sdk: new Map<Row, Outcome>() };

t.test('the sidecar outbound listener, over gRPC', async (t) => {
  const registry = await fleet(t);
  const sidecars = new Map<string, Sidecar>();
  t.teardown(() => Promise.all([...sidecars.values()].map((s) => s.close())));
  for (const row of rows) {
    const config = configOf(row);
    let sidecar = sidecars.get(config);
    if (sidecar === undefined) {
      sidecar = new Sidecar({ source: new FileSource({ path: registry }), outbound: { port: 0 }, defaultKey: row.defaultKey, strict: row.strict, logger: createLogger('silent') });
      sidecars.set(config, sidecar);
      await sidecar.start();
    }
    // The app propagated its inbound carriers on its call, as an app behind a sidecar does.
    const client = new UpstreamClient(`127.0.0.1:${sidecar.addresses.outbound!.port}`, insecure, { ...NO_PROXY, 'grpc.default_authority': row.host }) as unknown as Callable;
    try {
      const out = await callUpstream(client, metadataOf(row.carriers));
      observed.sidecar.set(row, out);
      expectRow(t, row, out, `${row.name} [${config}] via sidecar`);
    } finally {
      client.close();
    }
  }
});

t.test('the SDK in proxyless mode, over gRPC', async (t) => {
  const registry = await fleet(t);
  for (const config of [...new Set(rows.map(configOf))]) {
    const [defaultKey, strict] = config.split('/') as [string, string];
    const sdk = init({ registry, lane: defaultKey === '' ? 'base' : defaultKey, strict: strict === 'true' });
    const front = new grpc.Server({ interceptors: [grpcServerInterceptor(grpc)] });
    try {
      await sdk.ready;
      // The app: it calls the host it is asked to, by name, from inside the handler of the call
      // that brought the carriers, and answers with what its call got.
      front.addService(FRONT, {
        call: (call: grpc.ServerUnaryCall<{ host: string }, Outcome>, done: grpc.sendUnaryData<Outcome>) => {
          const client = new UpstreamClient(call.request.host, insecure, grpcClientOptions(grpc)) as unknown as Callable;
          callUpstream(client, new grpc.Metadata()).then(
            (out) => {
              client.close();
              done(null, out);
            },
            (error: Error) => {
              client.close();
              done(error);
            },
          );
        },
      });
      const address = await bind(front);
      const caller = new FrontClient(address, insecure, NO_PROXY) as unknown as Callable;
      try {
        for (const row of rows.filter((r) => configOf(r) === config)) {
          const out = await new Promise<Outcome>((resolve, reject) => {
            caller.call({ host: row.host }, metadataOf(row.carriers), { deadline: deadline() }, (error: grpc.ServiceError | null, value?: Outcome) => (error ? reject(error) : resolve(value!)));
          });
          observed.sdk.set(row, out);
          expectRow(t, row, out, `${row.name} [${config}] via SDK proxyless`);
        }
      } finally {
        caller.close();
      }
    } finally {
      front.forceShutdown();
      await sdk.close();
    }
  }
});

t.test('the sidecar and the SDK agree, row by row', async (t) => {
  for (const row of rows) {
    const sidecar = observed.sidecar.get(row);
    const sdk = observed.sdk.get(row);
    t.ok(sidecar !== undefined && sdk !== undefined, `${row.name}: both ran`);
    t.same(sdk, sidecar, `${row.name} [${configOf(row)}]: the SDK's outcome is the sidecar's`);
  }
});
