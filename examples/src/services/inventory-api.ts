/*
 * The inventory gRPC API as both ends of the demo use it: the .proto loaded with proto-loader, the
 * client orders makes, a call whose gRPC error becomes the demo's failure shape, and the server's
 * start and stop.
 */
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { grpcClientOptions } from '@devstack/sdk/grpc';
import type { DevstackSdk } from '@devstack/sdk';
import { announce, cannotListen, type Failure, type Reply, type Settings } from './common.ts';

export const PROTO = fileURLToPath(new URL('./inventory.proto', import.meta.url));

export interface ReserveRequest {
  item: string;
}

export interface ReserveReply {
  service: string;
  lane: string;
}

export type ReserveCallback = (error: grpc.ServiceError | null, reply?: ReserveReply) => void;

export interface InventoryClient extends grpc.Client {
  Reserve(request: ReserveRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: ReserveCallback): grpc.ClientUnaryCall;
}

const api = grpc.loadPackageDefinition(loadSync(PROTO, { keepCase: true, defaults: true })) as unknown as {
  devstack: { examples: { Inventory: grpc.ServiceClientConstructor } };
};
export const Inventory = api.devstack.examples.Inventory;

/**
 * A client of the registry service `service`. Proxyless (a registry), or with no sidecar at all,
 * the address is the service's name and the SDK's channel picks the copy for each call. Behind a
 * sidecar, calls go to its outbound listener (the HTTP_PROXY address) with the service in the
 * authority, which is what the sidecar routes gRPC by.
 */
export function inventoryClient(s: Settings, service: string, env: NodeJS.ProcessEnv = process.env): InventoryClient {
  const insecure = grpc.credentials.createInsecure();
  const proxy = env['HTTP_PROXY'] || env['http_proxy'];
  if (s.registry !== undefined || !proxy) return new Inventory(service, insecure, grpcClientOptions(grpc)) as unknown as InventoryClient;
  // grpc-js would otherwise tunnel through a lower-case http_proxy on its own: the sidecar is the target already.
  const options = grpcClientOptions(grpc, { 'grpc.default_authority': service, 'grpc.enable_http_proxy': 0 });
  return new Inventory(new URL(proxy).host, insecure, options) as unknown as InventoryClient;
}

/** `DEVSTACK_UPSTREAM_UNREACHABLE: ...`: the code the sidecar (or the SDK) puts first in the status details. */
const DEVSTACK_CODE = /^(DEVSTACK_[A-Z_]+): ?/;

function failure(error: grpc.ServiceError): Failure {
  const name = grpc.status[error.code] ?? String(error.code);
  const details = error.details ?? '';
  const code = DEVSTACK_CODE.exec(details);
  return { status: null, grpc: name, error: code?.[1] ?? `GRPC_${name}`, message: code ? details.slice(code[0].length) : details };
}

/** One Reserve call. Like callDownstream, a failure is part of the answer, never hidden. */
export function reserve(client: InventoryClient, timeoutMs = 5_000): Promise<{ ok: boolean; downstream: Reply | Failure }> {
  return new Promise((resolve) => {
    client.Reserve({ item: 'demo' }, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (error, reply) => {
      if (error !== null) resolve({ ok: false, downstream: failure(error) });
      else resolve({ ok: true, downstream: { service: reply!.service, lane: reply!.lane } });
    });
  });
}

/** Grace for calls in flight when the service stops, before they are cut. */
const STOP_GRACE_MS = 2_000;

/** Binds the server; on stop no new call is taken and the calls in flight finish (or are cut after a grace). */
export async function listenGrpc(server: grpc.Server, s: Settings, sdk: DevstackSdk): Promise<void> {
  const address = `${s.host.includes(':') ? `[${s.host}]` : s.host}:${s.port}`;
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound)));
  }).catch((error: NodeJS.ErrnoException) => cannotListen(s, error));
  announce(s, sdk, port, (done) => {
    const cut = setTimeout(() => {
      server.forceShutdown();
      finish();
    }, STOP_GRACE_MS);
    let finished = false;
    function finish() {
      if (finished) return;
      finished = true;
      clearTimeout(cut);
      done();
    }
    server.tryShutdown(finish);
  });
}
