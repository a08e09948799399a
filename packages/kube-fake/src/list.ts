import type { KubeObject, ResourceType } from './types.js';
import type { Store } from './store.js';
import type { Matcher } from './selectors.js';
import { KubeApiError, badRequest, failure } from './status.js';
import { groupVersion, storageKey } from './resources.js';
import { objectKey } from './store.js';
import { present } from './watch.js';

export interface ListQuery {
  namespace: string | undefined;
  label: Matcher;
  field: Matcher;
  filtered: boolean;
  resourceVersion: string | undefined;
  resourceVersionMatch: string | undefined;
  limit: number | undefined;
  continueToken: string | undefined;
}

interface Continue {
  rv: number;
  start: string;
}

function encodeContinue(token: Continue): string {
  return Buffer.from(JSON.stringify({ v: 'meta.k8s.io/v1', rv: token.rv, start: token.start })).toString('base64url');
}

function decodeContinue(text: string): Continue {
  try {
    const token = JSON.parse(Buffer.from(text, 'base64url').toString()) as { v?: string; rv?: number; start?: string };
    if (token.v === 'meta.k8s.io/v1' && typeof token.rv === 'number' && typeof token.start === 'string') {
      return { rv: token.rv, start: token.start };
    }
  } catch {
    // answered below, as one malformed token
  }
  throw badRequest('continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)');
}

/**
 * A list as the real server answers it: a consistent snapshot at one resourceVersion (the
 * current one, or the one of the first page for `continue`, or an `Exact` one), in key order,
 * with `limit` pages and `remainingItemCount` when no selector filters.
 */
export function list(store: Store, type: ResourceType, query: ListQuery) {
  const storage = storageKey(type);
  let rv = store.resourceVersion;
  let objects: KubeObject[];
  let start = '';
  if (query.continueToken) {
    const token = decodeContinue(query.continueToken);
    try {
      objects = store.at(storage, token.rv);
    } catch (cause) {
      throw new KubeApiError(
        failure(410, 'Expired', 'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.').status,
        { cause },
      );
    }
    rv = token.rv;
    start = token.start;
  } else if (query.resourceVersionMatch === 'Exact' && query.resourceVersion) {
    rv = Number(query.resourceVersion);
    objects = store.at(storage, rv);
  } else {
    if (query.resourceVersionMatch && query.resourceVersionMatch !== 'NotOlderThan' && query.resourceVersionMatch !== 'Exact') {
      throw badRequest(`resourceVersionMatch: Unsupported value: "${query.resourceVersionMatch}"`);
    }
    objects = store.current(storage);
  }
  const selected = objects.filter((o) => {
    const meta = o.metadata!;
    if (type.namespaced && query.namespace !== undefined && meta.namespace !== query.namespace) return false;
    if (start && objectKey(meta.namespace, meta.name!) < start) return false;
    return query.label(o) && query.field(o);
  });
  const metadata: Record<string, unknown> = { resourceVersion: String(rv) };
  let page = selected;
  if (query.limit !== undefined && query.limit > 0 && selected.length > query.limit) {
    page = selected.slice(0, query.limit);
    const last = page[page.length - 1]!.metadata!;
    metadata.continue = encodeContinue({ rv, start: `${objectKey(last.namespace, last.name!)}\u0000` });
    if (!query.filtered) metadata.remainingItemCount = selected.length - page.length;
  }
  const items = page.map((o) => {
    const item = present(type, o);
    // Typed built-in lists leave kind/apiVersion to the list itself; custom resources keep them.
    if (!type.custom) {
      delete item.kind;
      delete item.apiVersion;
    }
    return item;
  });
  return { kind: `${type.kind}List`, apiVersion: groupVersion(type), metadata, items };
}
