import type { KubeObject } from './types.js';
import { failure } from './status.js';

/**
 * Decodes the Kubernetes protobuf request bodies that client-go's typed clients send for the core
 * kinds: helm stores its releases as Secrets that way. Only what those kinds carry is read
 * (ObjectMeta, Secret, ConfigMap, Namespace); answers stay JSON, which such clients also accept.
 */
export const PROTOBUF = 'application/vnd.kubernetes.protobuf';
const MAGIC = Buffer.from([0x6b, 0x38, 0x73, 0x00]);

type Field = { no: number; wire: number; value: bigint | Buffer };

function varint(buf: Buffer, at: { pos: number }): bigint {
  let result = 0n;
  let shift = 0n;
  for (;;) {
    if (at.pos >= buf.length) throw new Error('truncated varint');
    const byte = buf[at.pos++]!;
    result |= BigInt(byte & 0x7f) << shift;
    if ((byte & 0x80) === 0) return result;
    shift += 7n;
  }
}

function fields(buf: Buffer): Field[] {
  const out: Field[] = [];
  const at = { pos: 0 };
  while (at.pos < buf.length) {
    const key = Number(varint(buf, at));
    const no = key >> 3;
    const wire = key & 7;
    if (wire === 0) out.push({ no, wire, value: varint(buf, at) });
    else if (wire === 2) {
      const length = Number(varint(buf, at));
      out.push({ no, wire, value: buf.subarray(at.pos, at.pos + length) });
      at.pos += length;
    } else if (wire === 1) at.pos += 8;
    else if (wire === 5) at.pos += 4;
    else throw new Error(`unsupported wire type ${wire}`);
  }
  return out;
}

const text = (f: Field) => (f.value as Buffer).toString('utf8');

function map(entries: Field[], asBase64: boolean): Record<string, string> | undefined {
  if (entries.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const entry of entries) {
    const parts = fields(entry.value as Buffer);
    const key = parts.find((p) => p.no === 1);
    const value = parts.find((p) => p.no === 2);
    const raw = value ? (value.value as Buffer) : Buffer.alloc(0);
    out[key ? text(key) : ''] = asBase64 ? raw.toString('base64') : raw.toString('utf8');
  }
  return out;
}

function timestamp(buf: Buffer): string {
  const seconds = fields(buf).find((f) => f.no === 1);
  return new Date(Number(seconds ? (seconds.value as bigint) : 0n) * 1000).toISOString().replace(/\.\d+Z$/, 'Z');
}

function objectMeta(buf: Buffer): Record<string, unknown> {
  const f = fields(buf);
  const meta: Record<string, unknown> = {};
  const strings: Record<number, string> = { 1: 'name', 2: 'generateName', 3: 'namespace', 5: 'uid', 6: 'resourceVersion' };
  for (const field of f) {
    const name = strings[field.no];
    if (name) meta[name] = text(field);
    else if (field.no === 7) meta.generation = Number(field.value as bigint);
    else if (field.no === 8) meta.creationTimestamp = timestamp(field.value as Buffer);
  }
  const labels = map(f.filter((x) => x.no === 11), false);
  const annotations = map(f.filter((x) => x.no === 12), false);
  if (labels) meta.labels = labels;
  if (annotations) meta.annotations = annotations;
  const finalizers = f.filter((x) => x.no === 14).map(text);
  if (finalizers.length > 0) meta.finalizers = finalizers;
  return meta;
}

function decodeKind(kind: string, raw: Buffer): KubeObject {
  const f = fields(raw);
  const metaField = f.find((x) => x.no === 1);
  const object: KubeObject = { apiVersion: 'v1', kind, metadata: metaField ? objectMeta(metaField.value as Buffer) : {} };
  const all = (no: number) => f.filter((x) => x.no === no);
  switch (kind) {
    case 'Secret': {
      const data = map(all(2), true);
      const stringData = map(all(4), false);
      if (data) object.data = data;
      if (stringData) object.stringData = stringData;
      const type = all(3)[0];
      if (type) object.type = text(type);
      if (all(5)[0]) object.immutable = (all(5)[0]!.value as bigint) !== 0n;
      return object;
    }
    case 'ConfigMap': {
      const data = map(all(2), false);
      const binaryData = map(all(3), true);
      if (data) object.data = data;
      if (binaryData) object.binaryData = binaryData;
      if (all(4)[0]) object.immutable = (all(4)[0]!.value as bigint) !== 0n;
      return object;
    }
    case 'Namespace':
      return object;
    default:
      throw failure(415, 'UnsupportedMediaType', `the fake API server reads protobuf bodies of Secret, ConfigMap and Namespace only, not ${kind}`);
  }
}

/** The object in a `k8s\0`-framed runtime.Unknown envelope. */
export function decodeProtobuf(body: Buffer): KubeObject {
  if (body.length < 4 || !body.subarray(0, 4).equals(MAGIC)) {
    throw failure(400, 'BadRequest', 'the protobuf body does not start with the Kubernetes magic number');
  }
  try {
    const envelope = fields(body.subarray(4));
    const typeMeta = envelope.find((x) => x.no === 1);
    const raw = envelope.find((x) => x.no === 2);
    const tm = typeMeta ? fields(typeMeta.value as Buffer) : [];
    const apiVersion = tm.find((x) => x.no === 1);
    const kind = tm.find((x) => x.no === 2);
    const object = decodeKind(kind ? text(kind) : '', raw ? (raw.value as Buffer) : Buffer.alloc(0));
    if (apiVersion) object.apiVersion = text(apiVersion);
    return object;
  } catch (error) {
    if ((error as { status?: unknown }).status) throw error;
    throw failure(400, 'BadRequest', `the protobuf body could not be decoded: ${(error as Error).message}`);
  }
}
