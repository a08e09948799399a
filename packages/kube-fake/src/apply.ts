import { parse } from 'yaml';
import type { KubeObject, ResourceType } from './types.js';
import type { ObjectApi, WriteOptions } from './objects.js';
import { KubeApiError, badRequest } from './status.js';
import { mergePatch } from './patch.js';
import { clone } from './canonical.js';

const isMap = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** A merge patch that removes what `before` set and `after` no longer does (maps only). */
function removals(before: unknown, after: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (!isMap(before)) return out;
  for (const [key, value] of Object.entries(before)) {
    if (!isMap(after) || !(key in after)) out[key] = null;
    else if (isMap(value) && isMap(after[key])) {
      const nested = removals(value, after[key]);
      if (Object.keys(nested).length > 0) out[key] = nested;
    }
  }
  return out;
}

/**
 * Server-side apply (`application/apply-patch+yaml`, what helm 4 sends), approximated without
 * managedFields: a missing object is created from the configuration; an existing one gets the
 * configuration merged in (maps merge, lists are replaced), and the fields this field manager
 * applied before but no longer applies are removed. Ownership conflicts between managers are
 * not detected.
 */
export class ServerSideApply {
  /** Per object (by uid, so a re-created object starts afresh): each manager's last configuration. */
  readonly #applied = new Map<string, Map<string, KubeObject>>();

  constructor(private readonly objects: ObjectApi) {}

  apply(type: ResourceType, namespace: string | undefined, name: string, body: string, manager: string | undefined, options: WriteOptions): KubeObject {
    if (!manager) throw badRequest('PATCH: fieldManager is required for apply requests');
    let config: unknown;
    try {
      config = parse(body);
    } catch (cause) {
      throw new KubeApiError(badRequest(`error decoding YAML: ${(cause as Error).message}`).status, { cause });
    }
    if (!isMap(config)) throw badRequest('the apply configuration must be an object');
    const applied = config as KubeObject;
    const meta = (applied.metadata ??= {});
    if (meta.name !== undefined && meta.name !== name) throw badRequest(`the name of the object (${meta.name}) does not match the name on the URL (${name})`);
    meta.name = name;
    let current: KubeObject | undefined;
    try {
      current = this.objects.get(type, namespace, name);
    } catch (error) {
      if (!(error instanceof KubeApiError) || error.status.code !== 404) throw error;
    }
    let result: KubeObject;
    if (!current) {
      result = this.objects.create(type, namespace, applied, options);
    } else {
      const previous = this.#applied.get(current.metadata!.uid!)?.get(manager);
      const patch = mergePatch(removals(previous, applied), applied) as KubeObject;
      // The configuration states no version: apply is not a compare-and-swap unless it names one.
      const next = mergePatch(current, patch) as KubeObject;
      if (!meta.resourceVersion) next.metadata!.resourceVersion = current.metadata!.resourceVersion;
      result = this.objects.update(type, namespace, name, next, options);
    }
    if (!options.dryRun) {
      const uid = result.metadata!.uid!;
      const managers = this.#applied.get(uid) ?? new Map<string, KubeObject>();
      managers.set(manager, clone(applied));
      this.#applied.set(uid, managers);
    }
    return result;
  }
}
