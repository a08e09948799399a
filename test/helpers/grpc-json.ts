import type * as grpc from '@grpc/grpc-js';

/** JSON as a gRPC codec: real grpc-js calls without .proto files. */
const json = {
  serialize: (value: unknown): Buffer => Buffer.from(JSON.stringify(value)),
  deserialize: (bytes: Buffer): unknown => JSON.parse(bytes.toString('utf8')),
};

/** A unary method definition at `path`, its messages JSON. */
export function unaryMethod(path: string): grpc.MethodDefinition<unknown, unknown> {
  return {
    path,
    requestStream: false,
    responseStream: false,
    requestSerialize: json.serialize,
    requestDeserialize: json.deserialize,
    responseSerialize: json.serialize,
    responseDeserialize: json.deserialize,
  };
}
