import { isIPv4, isIPv6 } from 'node:net';
import { FEATURE_LABEL, SERVICE_LABEL, STACK_ON_ANNOTATION, describeUntrusted, isValidKey } from '@devstack/core';
import { SLICE_SERVICE_LABEL, type EndpointSliceObject, type ServiceObject } from './model.js';
import type { UnusableObject as Unusable } from './reflector.js';

/*
 * An object the API server sent that routing cannot use is reported and skipped, so it costs only
 * itself. A real API server refuses most of these, but a future field, a CRD-backed source or a
 * server that does not validate may send them.
 */

type Json = Record<string, unknown>;

const isRecord = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const absent = (v: unknown) => v === undefined || v === null;

/** DNS-1123 subdomain: the names of most objects, EndpointSlices among them. */
const SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

class Problem extends Error {}

function fail(message: string): never {
  throw new Problem(message);
}

function optionalString(v: unknown, where: string): string | undefined {
  if (absent(v)) return undefined;
  if (typeof v !== 'string') fail(`${where}: expected a string, got ${describeUntrusted(v)}`);
  return v;
}

function list(v: unknown, where: string): unknown[] {
  if (absent(v)) return [];
  if (!Array.isArray(v)) fail(`${where}: expected a list, got ${describeUntrusted(v)}`);
  return v;
}

function record(v: unknown, where: string): Json {
  if (!isRecord(v)) fail(`${where}: expected an object, got ${describeUntrusted(v)}`);
  return v;
}

function port(v: unknown, where: string, optional: boolean): number | undefined {
  if (optional && absent(v)) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 65535) fail(`${where}: expected a port number 1-65535, got ${describeUntrusted(v)}`);
  return v;
}

function optionalBoolean(v: unknown, where: string): boolean | undefined {
  if (absent(v)) return undefined;
  if (typeof v !== 'boolean') fail(`${where}: expected true or false, got ${describeUntrusted(v)}`);
  return v;
}

interface Meta {
  name: string;
  namespace: string;
  resourceVersion: string;
  creationTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

/** The metadata routing reads, with only the labels it reads. */
function meta(raw: Json, labelNames: readonly string[], nameIsLabel: boolean, annotationNames: readonly string[] = []): Meta {
  const m = record(raw['metadata'], 'metadata');
  const name = m['name'];
  if (typeof name !== 'string' || !(nameIsLabel ? isValidKey(name) : name.length <= 253 && SUBDOMAIN.test(name))) {
    fail(`metadata.name: ${describeUntrusted(name)} is not a ${nameIsLabel ? 'DNS-1123 label' : 'DNS-1123 subdomain'}`);
  }
  const namespace = m['namespace'];
  if (typeof namespace !== 'string' || !isValidKey(namespace)) fail(`metadata.namespace: ${describeUntrusted(namespace)} is not a DNS-1123 label`);
  const out: Meta = { name, namespace, resourceVersion: optionalString(m['resourceVersion'], 'metadata.resourceVersion') ?? '' };
  const created = m['creationTimestamp'];
  if (typeof created === 'string') out.creationTimestamp = created;
  if (!absent(m['labels'])) {
    const labels = record(m['labels'], 'metadata.labels');
    for (const label of labelNames) {
      const value = optionalString(labels[label], `metadata.labels[${label}]`);
      if (value !== undefined) (out.labels ??= {})[label] = value;
    }
  }
  if (annotationNames.length > 0 && !absent(m['annotations'])) {
    const annotations = record(m['annotations'], 'metadata.annotations');
    for (const annotation of annotationNames) {
      const value = optionalString(annotations[annotation], `metadata.annotations[${annotation}]`);
      if (value !== undefined) (out.annotations ??= {})[annotation] = value;
    }
  }
  return out;
}

const SERVICE_LABELS = [SERVICE_LABEL, FEATURE_LABEL] as const;
const SLICE_LABELS = [SLICE_SERVICE_LABEL] as const;
const SERVICE_ANNOTATIONS = [STACK_ON_ANNOTATION] as const;

/**
 * A core/v1 Service as routing reads it (name, namespace, version, creation time, the devstack
 * labels, its ports), or why it cannot be used. Nothing else of the object is kept.
 */
export function toService(raw: unknown): ServiceObject | Unusable {
  try {
    const o = record(raw, 'Service');
    const metadata = meta(o, SERVICE_LABELS, true, SERVICE_ANNOTATIONS);
    const spec = absent(o['spec']) ? {} : record(o['spec'], 'spec');
    const ports = list(spec['ports'], 'spec.ports').map((p, i) => {
      const where = `spec.ports[${i}]`;
      const entry = record(p, where);
      const out: { name?: string; port?: number; protocol?: string; appProtocol?: string } = { port: port(entry['port'], `${where}.port`, false)! };
      const name = optionalString(entry['name'], `${where}.name`);
      const protocol = optionalString(entry['protocol'], `${where}.protocol`);
      const appProtocol = optionalString(entry['appProtocol'], `${where}.appProtocol`);
      if (name !== undefined) out.name = name;
      if (protocol !== undefined) out.protocol = protocol;
      if (appProtocol !== undefined) out.appProtocol = appProtocol;
      return out;
    });
    return { metadata, spec: { ports } };
  } catch (error) {
    if (error instanceof Problem) return { unusable: error.message };
    throw error;
  }
}

function address(v: unknown, addressType: string | undefined, where: string): string {
  if (typeof v !== 'string') fail(`${where}: expected an address, got ${describeUntrusted(v)}`);
  const ok = addressType === 'IPv4' ? isIPv4(v) : addressType === 'IPv6' ? isIPv6(v) : addressType === 'FQDN' ? v.length <= 253 && SUBDOMAIN.test(v) : isIPv4(v) || isIPv6(v);
  if (!ok) fail(`${where}: ${describeUntrusted(v)} is not ${addressType === 'FQDN' ? 'a DNS name' : `an ${addressType ?? 'IP'} address`}`);
  return v;
}

/**
 * A discovery.k8s.io/v1 EndpointSlice as routing reads it (name, namespace, version, owner label,
 * address type, endpoints' addresses and readiness, ports), or why it cannot be used.
 */
export function toSlice(raw: unknown): EndpointSliceObject | Unusable {
  try {
    const o = record(raw, 'EndpointSlice');
    const metadata = meta(o, SLICE_LABELS, false);
    const addressType = optionalString(o['addressType'], 'addressType');
    // The API sends `endpoints: null` for a slice with no endpoint.
    const endpoints = list(o['endpoints'], 'endpoints').map((e, i) => {
      const where = `endpoints[${i}]`;
      const entry = record(e, where);
      const addresses = list(entry['addresses'], `${where}.addresses`).map((a, j) => address(a, addressType, `${where}.addresses[${j}]`));
      const out: NonNullable<EndpointSliceObject['endpoints']>[number] = { addresses };
      if (!absent(entry['conditions'])) {
        const c = record(entry['conditions'], `${where}.conditions`);
        const ready = optionalBoolean(c['ready'], `${where}.conditions.ready`);
        const terminating = optionalBoolean(c['terminating'], `${where}.conditions.terminating`);
        out.conditions = {};
        if (ready !== undefined) out.conditions.ready = ready;
        if (terminating !== undefined) out.conditions.terminating = terminating;
      }
      return out;
    });
    const ports = list(o['ports'], 'ports').map((p, i) => {
      const where = `ports[${i}]`;
      const entry = record(p, where);
      const out: { name?: string; port?: number; protocol?: string } = {};
      const name = optionalString(entry['name'], `${where}.name`);
      const number = port(entry['port'], `${where}.port`, true);
      const protocol = optionalString(entry['protocol'], `${where}.protocol`);
      if (name !== undefined) out.name = name;
      if (number !== undefined) out.port = number;
      if (protocol !== undefined) out.protocol = protocol;
      return out;
    });
    const out: EndpointSliceObject = { metadata, endpoints, ports };
    if (addressType !== undefined) out.addressType = addressType;
    return out;
  } catch (error) {
    if (error instanceof Problem) return { unusable: error.message };
    throw error;
  }
}
