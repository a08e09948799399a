/* eslint-disable @typescript-eslint/no-require-imports -- a CommonJS app, written as teams write them */
// A gRPC service (JSON messages, no .proto) whose handler asks an HTTP service with fetch.
const grpc = require('@grpc/grpc-js');

const { service } = require('./inventory-api.cjs');

const server = new grpc.Server();
server.addService(service, {
  check(call, callback) {
    const metadata = Object.fromEntries(['uber-ctx-key', 'baggage', 'uberctx-uber-ctx-key'].map((k) => [k, call.metadata.get(k).map(String)]));
    fetch(process.env.NEXT_URL)
      .then(async (r) => callback(null, { service: process.env.SERVICE, metadata, next: await r.json() }))
      .catch((error) => callback(error));
  },
});
server.bindAsync(`127.0.0.1:${process.env.PORT ?? 50051}`, grpc.ServerCredentials.createInsecure(), (error, port) => {
  if (error) throw error;
  console.log(`listening ${port}`);
});
