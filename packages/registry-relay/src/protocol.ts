import type { ServiceEntry, ServiceInput, Snapshot, Target, TargetInput } from '@devstack/core';

/**
 * The relay's wire protocol: one HTTP/1.1 GET per stream, answered with newline-delimited JSON
 * (`application/x-ndjson`), one message a line.
 *
 * `GET /v1/namespaces/NS/stream[?epoch=E&since=V]`
 *
 * - `snapshot`: every service of the namespace, at `version`, and its `stacks` (key -> the key it
 *   stacks on; left out when there are none). The first line of a stream, unless the client
 *   resumed from a version the relay still knows.
 * - `delta`: the services that changed since `from` (a description, or null: removed), at
 *   `version`, and `stacks`, all of them, only when they changed (`{}`: none left). A client applies
 *   it only on top of `from`; anything else is a protocol error. A client that ignores `stacks`
 *   routes as if there were none, so an older client keeps working.
 * - `resumed`: the client's version (`since`) is current; nothing is resent.
 * - `heartbeat`: nothing changed; sent every heartbeat interval so a silent relay is told from a
 *   quiet fleet, and at once when the relay's own source goes stale or current again.
 *
 * Versions increase with every change the relay publishes for a namespace; `epoch` names one run
 * of one relay, so a version from another replica or an earlier run is unknown, not compared.
 */
export const STREAM_PATH = /^\/v1\/namespaces\/([^/]+)\/stream$/;
export const streamPath = (namespace: string): string => `/v1/namespaces/${encodeURIComponent(namespace)}/stream`;
export const NDJSON = 'application/x-ndjson';

/** Stable codes of the relay's JSON error bodies `{ error: { code, message } }`. */
export const RELAY_ERRORS = Object.freeze({
  notServed: 'DEVSTACK_RELAY_NAMESPACE_NOT_SERVED',
  badRequest: 'DEVSTACK_RELAY_BAD_REQUEST',
  notFound: 'DEVSTACK_RELAY_NOT_FOUND',
  method: 'DEVSTACK_RELAY_METHOD_NOT_ALLOWED',
  overloaded: 'DEVSTACK_RELAY_OVERLOADED',
  notReady: 'DEVSTACK_RELAY_NOT_READY',
} as const);

/** What every message tells besides its payload: the relay's own source state. */
interface Common {
  epoch: string;
  version: number;
  /** The relay cannot reach the API server now: what it serves is its last snapshot. */
  stale: boolean;
  /** When the relay's data was last known complete and current (ms since the epoch), or null. */
  lastSync: number | null;
}

export interface SnapshotMessage extends Common {
  type: 'snapshot';
  services: Record<string, ServiceInput>;
  stacks?: Record<string, string>;
}

export interface DeltaMessage extends Common {
  type: 'delta';
  from: number;
  services: Record<string, ServiceInput | null>;
  /** Every stack, when they changed since `from`; absent: unchanged. */
  stacks?: Record<string, string>;
}

export interface ResumedMessage extends Common {
  type: 'resumed';
}

export interface HeartbeatMessage extends Common {
  type: 'heartbeat';
}

export type RelayMessage = SnapshotMessage | DeltaMessage | ResumedMessage | HeartbeatMessage;

/** A target as the registry format reads it, in its shortest form: most targets are one string. */
function targetJSON(target: Target): TargetInput {
  if (target.ready && target.protocol === 'http1') return target.origin;
  const out: { url: string; ready?: boolean; protocol?: 'h2c' } = { url: target.origin };
  if (!target.ready) out.ready = false;
  if (target.protocol === 'h2c') out.protocol = 'h2c';
  return out;
}

/** A service entry back as the description that builds it (core's `buildSnapshot` reads it as is). */
export function entryToInput(entry: ServiceEntry): ServiceInput {
  const features: Record<string, TargetInput[]> = {};
  for (const [key, lane] of entry.features) features[key] = lane.targets.map(targetJSON);
  return { base: entry.base.targets.map(targetJSON), features };
}

/**
 * Each entry's JSON once: a snapshot shares unchanged entries with the one before it
 * (`updateSnapshot`), so encoding a change costs the services it touched.
 */
const encoded = new WeakMap<ServiceEntry, string>();

export function entryJSON(entry: ServiceEntry): string {
  let json = encoded.get(entry);
  if (json === undefined) {
    json = JSON.stringify(entryToInput(entry));
    encoded.set(entry, json);
  }
  return json;
}

/** The services that differ from `from` to `to`, as `"name":json|null` members of a JSON object. */
export function changedMembers(from: Snapshot, to: Snapshot): string[] {
  const members: string[] = [];
  for (const [name, entry] of to.services) {
    const before = from.services.get(name);
    if (before === entry) continue;
    const json = entryJSON(entry);
    if (before !== undefined && entryJSON(before) === json) continue;
    members.push(`${JSON.stringify(name)}:${json}`);
  }
  for (const name of from.services.keys()) if (!to.services.has(name)) members.push(`${JSON.stringify(name)}:null`);
  return members;
}

/** The stacks of `to` when they differ from those of `from`, else undefined (nothing to send). */
export function changedStacks(from: Snapshot, to: Snapshot): Record<string, string> | undefined {
  if (from.stacks === to.stacks) return undefined;
  let same = from.stacks.size === to.stacks.size;
  if (same) for (const [key, parent] of to.stacks) if (from.stacks.get(key) !== parent) same = false;
  return same ? undefined : Object.fromEntries(to.stacks);
}

function head(type: RelayMessage['type'], common: Common): string {
  return `{"type":"${type}","epoch":${JSON.stringify(common.epoch)},"version":${common.version},"stale":${common.stale},"lastSync":${common.lastSync ?? 'null'}`;
}

export function encodeSnapshot(snapshot: Snapshot, common: Common): string {
  const members: string[] = [];
  for (const [name, entry] of snapshot.services) members.push(`${JSON.stringify(name)}:${entryJSON(entry)}`);
  const stacks = snapshot.stacks.size === 0 ? '' : `,"stacks":${JSON.stringify(Object.fromEntries(snapshot.stacks))}`;
  return `${head('snapshot', common)},"services":{${members.join(',')}}${stacks}}\n`;
}

export function encodeDelta(members: readonly string[], from: number, common: Common, stacks?: Record<string, string>): string {
  return `${head('delta', common)},"from":${from},"services":{${members.join(',')}}${stacks === undefined ? '' : `,"stacks":${JSON.stringify(stacks)}`}}\n`;
}

export function encodeStatus(type: 'resumed' | 'heartbeat', common: Common): string {
  return `${head(type, common)}}\n`;
}
