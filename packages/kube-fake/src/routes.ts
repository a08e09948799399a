import type { IncomingMessage, ServerResponse } from 'node:http';
import type { KubeObject, ResourceType } from './types.js';
import type { Store } from './store.js';
import type { ObjectApi } from './objects.js';
import { type ResourceTypes, VERSION_INFO, apiGroup, apiGroupList, apiResourceList, apiVersions } from './resources.js';
import { badRequest, failure, unknownPath } from './status.js';
import { parseFieldSelector, parseLabelSelector } from './selectors.js';
import { list } from './list.js';
import { openapiV3 } from './openapi.js';
import { toTable, wantsTable } from './table.js';
import { PROTOBUF } from './protobuf.js';
import { mediaType, readBody, readJson, sendError, sendJson } from './http.js';
import type { ServerSideApply } from './apply.js';
import { APPLY_PATCH } from './patch.js';
import { type WatchSpec, type WatchStream, present } from './watch.js';
import type { Faults, RequestInfo } from './faults.js';

export interface RouteContext {
  store: Store;
  objects: ObjectApi;
  apply: ServerSideApply;
  types: ResourceTypes;
  faults: Faults;
  bookmarkIntervalMs(): number;
  expiredWatch(): 'event' | 'status';
  address(): string;
  openWatch(spec: WatchSpec, res: ServerResponse): WatchStream;
  nextWatchId(): number;
}

/** Splits `/api/v1/...` and `/apis/<group>/<version>/...` into the parts the API addresses. */
function parseResourcePath(parts: string[]) {
  let group: string;
  let rest: string[];
  if (parts[0] === 'api') {
    group = '';
    rest = parts.slice(1);
  } else {
    group = parts[1]!;
    rest = parts.slice(2);
  }
  const version = rest[0]!;
  let tail = rest.slice(1);
  let legacyWatch = false;
  if (tail[0] === 'watch') {
    legacyWatch = true;
    tail = tail.slice(1);
  }
  let namespace: string | undefined;
  if (tail[0] === 'namespaces' && tail.length >= 3) {
    namespace = tail[1];
    tail = tail.slice(2);
  }
  return { group, version, plural: tail[0], name: tail[1], subresource: tail[2], extra: tail.length > 3, namespace, legacyWatch };
}

function flag(value: string | undefined): boolean {
  return value === '1' || value === 'true';
}

function integer(value: string | undefined, name: string): number | undefined {
  if (value === undefined || value === '') return undefined;
  if (!/^\d+$/.test(value)) throw badRequest(`invalid ${name}: ${value}`);
  return Number(value);
}

function checkVersion(value: string | undefined): void {
  if (value !== undefined && value !== '' && !/^\d+$/.test(value)) {
    throw badRequest(`invalid resource version: ${value}`);
  }
}

/** Serves one request; any thrown KubeApiError becomes its Status answer. */
export async function route(ctx: RouteContext, req: IncomingMessage, res: ServerResponse, info: RequestInfo): Promise<void> {
  const parts = info.path.split('/').filter((p) => p !== '').map(decodeURIComponent);
  const method = info.method;
  const get = method === 'GET' || method === 'HEAD';

  if (parts.length === 0) return sendJson(res, 200, { paths: ['/api', '/api/v1', '/apis', '/version', '/healthz', '/livez', '/readyz'] });
  if (get && parts.length === 1 && ['healthz', 'livez', 'readyz'].includes(parts[0]!)) {
    res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
    return void res.end('ok');
  }
  if (get && parts.length === 1 && parts[0] === 'version') return sendJson(res, 200, VERSION_INFO);
  if (get && parts[0] === 'openapi' && parts[1] === 'v3') {
    const doc = openapiV3(ctx.types, parts.slice(2).join('/'));
    return doc ? sendJson(res, 200, doc) : sendError(res, unknownPath());
  }
  if (get && parts.length === 1 && parts[0] === 'api') return sendJson(res, 200, apiVersions(ctx.address()));
  if (get && parts.length === 1 && parts[0] === 'apis') return sendJson(res, 200, apiGroupList(ctx.types));
  if (get && parts.length === 2 && parts[0] === 'api') {
    const doc = apiResourceList(ctx.types, '', parts[1]!);
    return doc ? sendJson(res, 200, doc) : sendError(res, unknownPath());
  }
  if (get && parts.length === 2 && parts[0] === 'apis') {
    const doc = apiGroup(ctx.types, parts[1]!);
    return doc ? sendJson(res, 200, doc) : sendError(res, unknownPath());
  }
  if (get && parts.length === 3 && parts[0] === 'apis') {
    const doc = apiResourceList(ctx.types, parts[1]!, parts[2]!);
    return doc ? sendJson(res, 200, doc) : sendError(res, unknownPath());
  }
  if (!((parts[0] === 'api' && parts.length >= 3) || (parts[0] === 'apis' && parts.length >= 4))) throw unknownPath();

  const p = parseResourcePath(parts);
  const type = p.plural ? ctx.types.byPath(p.group, p.version, p.plural) : undefined;
  if (!type || p.extra || p.subresource !== undefined) throw unknownPath();
  if (p.namespace !== undefined && !type.namespaced) throw unknownPath();
  if (p.name !== undefined && type.namespaced && p.namespace === undefined) throw unknownPath();
  const q = info.query;
  const dryRun = q.dryRun === 'All';
  const table = wantsTable(req.headers.accept);

  if (p.name === undefined) {
    if (get && (info.watch || p.legacyWatch)) return watch(ctx, type, p.namespace, info, res, table);
    if (get) {
      const listed = listOf(ctx, type, p.namespace, q);
      if (!table) return sendJson(res, 200, listed);
      const items = listed.items.map((item) => present(type, item));
      return sendJson(res, 200, toTable(type, items, listed.metadata, q.includeObject));
    }
    if (method === 'POST') {
      const created = ctx.objects.create(type, p.namespace, await readJson(req), { dryRun });
      return sendJson(res, 201, present(type, created));
    }
    if (method === 'DELETE') return deleteCollection(ctx, type, p.namespace, q, res, dryRun);
    throw failure(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource`);
  }
  const name = p.name;
  if (get) {
    const found = present(type, ctx.objects.get(type, p.namespace, name));
    return sendJson(res, 200, table ? toTable(type, [found], { resourceVersion: found.metadata!.resourceVersion }, q.includeObject) : found);
  }
  if (method === 'PUT') {
    return sendJson(res, 200, present(type, ctx.objects.update(type, p.namespace, name, await readJson(req), { dryRun })));
  }
  if (method === 'PATCH') {
    const body = await readBody(req);
    if (mediaType(req) === APPLY_PATCH) {
      return sendJson(res, 200, present(type, ctx.apply.apply(type, p.namespace, name, body, q.fieldManager, { dryRun })));
    }
    const patched = ctx.objects.patch(type, p.namespace, name, body, req.headers['content-type'] ?? '', { dryRun });
    return sendJson(res, 200, present(type, patched));
  }
  if (method === 'DELETE') {
    // DeleteOptions in protobuf (client-go's typed clients) carry nothing the fake acts on.
    const text = mediaType(req) === PROTOBUF ? '' : await readBody(req);
    let options: { preconditions?: { uid?: string; resourceVersion?: string }; dryRun?: string[] } = {};
    if (text.trim() !== '') {
      try {
        options = JSON.parse(text) as typeof options;
      } catch {
        throw badRequest('the DeleteOptions body is not valid JSON');
      }
    }
    const deleted = ctx.objects.delete(type, p.namespace, name, options.preconditions ?? {}, {
      dryRun: dryRun || (options.dryRun ?? []).includes('All'),
    });
    return sendJson(res, 200, deleted.kind === 'Status' ? deleted : present(type, deleted as KubeObject));
  }
  throw failure(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource`);
}

function selectors(type: ResourceType, q: Readonly<Record<string, string>>) {
  return {
    label: parseLabelSelector(q.labelSelector),
    field: parseFieldSelector(q.fieldSelector, type.kind),
    filtered: Boolean(q.labelSelector || q.fieldSelector),
  };
}

function listOf(ctx: RouteContext, type: ResourceType, namespace: string | undefined, q: Readonly<Record<string, string>>) {
  checkVersion(q.resourceVersion);
  return list(ctx.store, type, {
    namespace,
    ...selectors(type, q),
    resourceVersion: q.resourceVersion,
    resourceVersionMatch: q.resourceVersionMatch,
    limit: integer(q.limit, 'limit'),
    continueToken: q.continue || undefined,
  });
}

function deleteCollection(
  ctx: RouteContext,
  type: ResourceType,
  namespace: string | undefined,
  q: Readonly<Record<string, string>>,
  res: ServerResponse,
  dryRun: boolean,
): void {
  const listed = list(ctx.store, type, { namespace, ...selectors(type, q), resourceVersion: undefined, resourceVersionMatch: undefined, limit: undefined, continueToken: undefined });
  const items = listed.items.map((item) => {
    const meta = item.metadata!;
    const gone = ctx.objects.delete(type, meta.namespace, meta.name!, {}, { dryRun });
    return gone.kind === 'Status' ? item : gone;
  });
  sendJson(res, 200, { ...listed, metadata: { resourceVersion: String(ctx.store.resourceVersion) }, items });
}

function watch(ctx: RouteContext, type: ResourceType, namespace: string | undefined, info: RequestInfo, res: ServerResponse, table: boolean): void {
  const q = info.query;
  checkVersion(q.resourceVersion);
  const spec: WatchSpec = {
    info: {
      id: ctx.nextWatchId(),
      path: info.path,
      kind: type.kind,
      namespace,
      labelSelector: q.labelSelector || undefined,
      fieldSelector: q.fieldSelector || undefined,
      resourceVersion: q.resourceVersion,
      allowWatchBookmarks: flag(q.allowWatchBookmarks),
      // 0 is "no timeout asked", as for the real server: its own default applies.
      timeoutSeconds: integer(q.timeoutSeconds, 'timeoutSeconds') || undefined,
      sendInitialEvents: flag(q.sendInitialEvents),
    },
    type,
    matches: selectors(type, q),
    bookmarkIntervalMs: ctx.bookmarkIntervalMs(),
    expired: ctx.expiredWatch(),
    table: table ? { includeObject: q.includeObject } : undefined,
  };
  ctx.openWatch(spec, res);
}
