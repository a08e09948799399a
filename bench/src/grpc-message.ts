/*
 * The one unary gRPC call of the h2 suite, as bytes: no .proto and no code generation, so the
 * load generator (h2load, which knows nothing of gRPC) sends exactly what a gRPC client would.
 * Messages are protobuf `{ bytes payload = 1; }`, each sent as one length-prefixed message
 * (1 byte compressed flag, 4 bytes big-endian length, the message).
 */

export const GRPC_SERVICE = 'devstack.bench.Echo';
export const GRPC_METHOD = `/${GRPC_SERVICE}/Unary`;
export const GRPC_CONTENT_TYPE = 'application/grpc';

/** Protobuf field 1 (length-delimited) holding `payload`; at most 127 bytes, so one length byte. */
export function protoBytes(payload: Buffer): Buffer {
  if (payload.length > 127) throw new Error(`payload of ${payload.length} bytes needs a varint length; keep it <= 127`);
  return Buffer.concat([Buffer.from([0x0a, payload.length]), payload]);
}

/** The request message (16 bytes) and the answer (64 bytes, like the 64 B GET's body). */
export const GRPC_REQUEST = protoBytes(Buffer.from('devstack-bench', 'latin1'));
export const GRPC_RESPONSE = protoBytes(Buffer.alloc(62, 'r'));

export function frame(message: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(message.length, 1);
  return Buffer.concat([head, message]);
}

/** Splits a request or response body into its messages; throws on a truncated or compressed one. */
export function unframe(body: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  while (at < body.length) {
    if (body.length - at < 5) throw new Error(`truncated gRPC message prefix (${body.length - at} of 5 bytes)`);
    if (body[at] !== 0) throw new Error(`compressed gRPC message (flag ${body[at]}), none was asked for`);
    const length = body.readUInt32BE(at + 1);
    if (body.length - at - 5 < length) throw new Error(`truncated gRPC message: ${body.length - at - 5} of ${length} bytes`);
    out.push(body.subarray(at + 5, at + 5 + length));
    at += 5 + length;
  }
  return out;
}

export const GRPC_REQUEST_FRAME = frame(GRPC_REQUEST);
export const GRPC_RESPONSE_FRAME = frame(GRPC_RESPONSE);
