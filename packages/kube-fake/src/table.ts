import type { KubeObject, ResourceType } from './types.js';

type Json = Record<string, unknown>;
type Column = { name: string; type: string; format: string; description: string; priority: number; cell: (o: KubeObject) => unknown };

const str = (v: unknown) => (v === undefined || v === null || v === '' ? '<none>' : String(v));
const rec = (v: unknown): Json => (v && typeof v === 'object' ? (v as Json) : {});
const arr = (v: unknown): Json[] => (Array.isArray(v) ? (v as Json[]) : []);
const keysOf = (v: unknown) => Object.keys(rec(v)).length;

/** Human age as the real server's printers write it: 42s, 5m, 3h, 2d. */
function age(o: KubeObject): string {
  const created = Date.parse(String(o.metadata?.creationTimestamp ?? ''));
  if (Number.isNaN(created)) return '<unknown>';
  const s = Math.max(0, Math.floor((Date.now() - created) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

const column = (name: string, cell: Column['cell'], priority = 0, format = ''): Column => ({
  name,
  type: 'string',
  format,
  description: `${name} column`,
  priority,
  cell,
});

const NAME = column('Name', (o) => o.metadata?.name, 0, 'name');
const AGE = column('Age', age);

/** The columns of the real server's printers for the built-in kinds; Name and Age for the rest. */
const COLUMNS: Record<string, Column[]> = {
  Service: [
    NAME,
    column('Type', (o) => rec(o.spec).type),
    column('Cluster-IP', (o) => str(rec(o.spec).clusterIP)),
    column('External-IP', (o) => str(arr(rec(o.spec).externalIPs).join(',') || rec(o.spec).externalName)),
    column('Port(s)', (o) => str(arr(rec(o.spec).ports).map((p) => `${p.port}/${p.protocol ?? 'TCP'}`).join(','))),
    AGE,
    column('Selector', (o) => str(Object.entries(rec(rec(o.spec).selector)).map(([k, v]) => `${k}=${v}`).join(',')), 1),
  ],
  Namespace: [NAME, column('Status', (o) => rec(o.status).phase), AGE],
  Secret: [NAME, column('Type', (o) => o.type), column('Data', (o) => keysOf(o.data)), AGE],
  ConfigMap: [NAME, column('Data', (o) => keysOf(o.data) + keysOf(o.binaryData)), AGE],
  EndpointSlice: [
    NAME,
    column('AddressType', (o) => o.addressType),
    column('Ports', (o) => str(arr(o.ports).map((p) => p.port).join(','))),
    column('Endpoints', (o) => str(arr(o.endpoints).flatMap((e) => arr(e.addresses)).join(','))),
    AGE,
  ],
};

/** True when the client asked for the server-side printed form (`as=Table`), as kubectl get does. */
export function wantsTable(accept: string | undefined): boolean {
  return !!accept && /;\s*as=Table/.test(accept.split(',')[0] ?? '');
}

function row(object: KubeObject, columns: Column[], include: string | undefined): Json {
  const meta = object.metadata ?? {};
  let embedded: unknown;
  if (include === 'Object') embedded = object;
  else if (include !== 'None') embedded = { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: meta };
  const out: Json = { cells: columns.map((c) => c.cell(object) ?? '') };
  if (embedded) out.object = embedded;
  return out;
}

/** A `meta.k8s.io/v1` Table of `objects`; `headers` false drops the column definitions (later watch events). */
export function toTable(type: ResourceType, objects: KubeObject[], metadata: Json, include: string | undefined, headers = true): Json {
  const columns = COLUMNS[type.custom ? '' : type.kind] ?? [NAME, AGE];
  const columnDefinitions = headers ? columns.map(({ cell: _cell, ...definition }) => definition) : [];
  return { kind: 'Table', apiVersion: 'meta.k8s.io/v1', metadata, columnDefinitions, rows: objects.map((o) => row(o, columns, include)) };
}
