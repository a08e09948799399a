import { createHash } from 'node:crypto';
import type { ResourceType } from './types.js';
import type { ResourceTypes } from './resources.js';

const gvPath = (group: string, version: string) => (group ? `apis/${group}/${version}` : `api/${version}`);

function groupVersionsOf(types: ResourceTypes): Map<string, ResourceType[]> {
  const byPath = new Map<string, ResourceType[]>();
  for (const t of types.all()) {
    const key = gvPath(t.group, t.version);
    byPath.set(key, [...(byPath.get(key) ?? []), t]);
  }
  return byPath;
}

/**
 * One group version's OpenAPI v3 document, reduced to what kubectl reads from it: the item paths
 * whose write operations name their kind and take `fieldValidation` (so kubectl leaves
 * validation to the server instead of downloading schemas), and an open schema per kind.
 */
function gvDocument(path: string, types: ResourceType[]) {
  const paths: Record<string, unknown> = {};
  const schemas: Record<string, unknown> = {};
  const parameter = { name: 'fieldValidation', in: 'query', schema: { type: 'string', uniqueItems: true } };
  for (const t of types) {
    const gvk = { group: t.group, version: t.version, kind: t.kind };
    const base = t.namespaced ? `/${path}/namespaces/{namespace}/${t.plural}` : `/${path}/${t.plural}`;
    const op = (action: string) => ({
      'x-kubernetes-action': action,
      'x-kubernetes-group-version-kind': gvk,
      parameters: [parameter],
      responses: { '200': { description: 'OK' } },
    });
    paths[base] = { post: op('post') };
    paths[`${base}/{name}`] = { put: op('put'), patch: op('patch') };
    const schemaName = `${t.group || 'io.k8s.api.core'}.${t.version}.${t.kind}`;
    schemas[schemaName] = {
      type: 'object',
      'x-kubernetes-group-version-kind': [gvk],
      'x-kubernetes-preserve-unknown-fields': true,
    };
  }
  return { openapi: '3.0.0', info: { title: 'Kubernetes', version: 'v1.33.0' }, paths, components: { schemas } };
}

/** `/openapi/v3` and `/openapi/v3/<group version path>`; undefined for an unknown one. */
export function openapiV3(types: ResourceTypes, rest: string): unknown {
  const gvs = groupVersionsOf(types);
  if (rest === '') {
    const paths: Record<string, unknown> = {};
    for (const [path, own] of gvs) {
      const hash = createHash('sha256').update(JSON.stringify(gvDocument(path, own))).digest('hex').slice(0, 32).toUpperCase();
      paths[path] = { serverRelativeURL: `/openapi/v3/${path}?hash=${hash}` };
    }
    return { paths };
  }
  const own = gvs.get(rest);
  return own ? gvDocument(rest, own) : undefined;
}
