/*
 * inventory: the demo's gRPC service, called by orders. Reserve answers which copy served the call.
 * The SDK's server interceptor reads the key from the call's metadata (for the calls a handler would
 * make) and names the lane in the response metadata. In the demo a sidecar stands in front of each
 * copy and speaks HTTP/2 to it (--app-protocol h2c), as it would in the copy's pod.
 */
import * as grpc from '@grpc/grpc-js';
import { init } from '@devstack/sdk';
import { grpcServerInterceptor } from '@devstack/sdk/grpc';
import { settings } from './common.ts';
import { Inventory, listenGrpc, type ReserveReply, type ReserveRequest } from './inventory-api.ts';

const s = settings('inventory');
const sdk = init({ lane: s.lane, registry: s.registry });
if (!(await sdk.ready) && sdk.proxyless) throw new Error('inventory: no registry snapshot for proxyless routing');

const server = new grpc.Server({ interceptors: [grpcServerInterceptor(grpc)] });
server.addService(Inventory.service, {
  Reserve(_call: grpc.ServerUnaryCall<ReserveRequest, ReserveReply>, done: grpc.sendUnaryData<ReserveReply>) {
    done(null, { service: s.service, lane: s.lane });
  },
});
await listenGrpc(server, s, sdk);
