import jsonpatch from 'fast-json-patch';
import type { Operation } from 'fast-json-patch';
import type { KubeObject } from './types.js';
import { KubeApiError, badRequest, failure } from './status.js';

export const MERGE_PATCH = 'application/merge-patch+json';
export const JSON_PATCH = 'application/json-patch+json';
export const STRATEGIC_MERGE_PATCH = 'application/strategic-merge-patch+json';
export const APPLY_PATCH = 'application/apply-patch+yaml';

const isMap = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** RFC 7386: maps merge key by key, `null` removes, anything else (lists too) replaces. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isMap(patch)) return patch;
  const result: Record<string, unknown> = isMap(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = mergePatch(result[key], value);
  }
  return result;
}

/**
 * Strategic merge patch, as kubectl sends it by default, treated as a merge patch: maps merge,
 * lists are replaced whole (the real server merges some lists by a key, e.g. ports by `port`),
 * and `$patch`/`$retainKeys`/`$setElementOrder` directives are dropped.
 */
function strategicPatch(target: unknown, patch: unknown): unknown {
  if (!isMap(patch)) return patch;
  if (patch.$patch === 'delete') return undefined;
  if (patch.$patch === 'replace') {
    const { $patch: _directive, ...rest } = patch;
    return rest;
  }
  const result: Record<string, unknown> = isMap(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (key.startsWith('$') || key.startsWith('$setElementOrder/')) continue;
    const merged = value === null ? undefined : strategicPatch(result[key], value);
    if (merged === undefined) delete result[key];
    else result[key] = merged;
  }
  return result;
}

/** Applies a patch of the given content type to `current`; answers errors as the real server does. */
export function applyPatch(current: KubeObject, body: string, contentType: string): KubeObject {
  const type = contentType.split(';')[0]!.trim().toLowerCase();
  if (type !== MERGE_PATCH && type !== JSON_PATCH && type !== STRATEGIC_MERGE_PATCH) {
    throw failure(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: ${JSON_PATCH}, ${MERGE_PATCH}, ${STRATEGIC_MERGE_PATCH}, ${APPLY_PATCH}`);
  }
  let patch: unknown;
  try {
    patch = JSON.parse(body);
  } catch (cause) {
    throw new KubeApiError(badRequest(`error decoding patch: ${(cause as Error).message}`).status, { cause });
  }
  if (type === JSON_PATCH) {
    if (!Array.isArray(patch)) throw badRequest('json: cannot unmarshal object into Go value of type jsonpatch.Patch');
    try {
      return jsonpatch.applyPatch(current, patch as Operation[], true, false).newDocument;
    } catch (cause) {
      // A well-formed patch whose operation fails (a `test`, a missing path) is a 422, as upstream.
      const error = failure(422, 'Invalid', `the server rejected our request due to an error in our request: ${(cause as Error).message.split('\n')[0]}`);
      throw new KubeApiError(error.status, { cause });
    }
  }
  if (!isMap(patch)) throw badRequest('json: cannot unmarshal non-object into a merge patch');
  return (type === MERGE_PATCH ? mergePatch(current, patch) : strategicPatch(current, patch)) as KubeObject;
}
