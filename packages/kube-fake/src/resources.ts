import type { CustomResourceDefinition, ResourceType } from './types.js';
import { badRequest } from './status.js';

const VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

function builtin(
  group: string,
  version: string,
  kind: string,
  plural: string,
  namespaced: boolean,
  shortNames: string[],
  returnDeleted: boolean,
): ResourceType {
  const singular = kind.toLowerCase();
  return { group, version, kind, plural, singular, namespaced, shortNames, categories: [], custom: false, returnDeleted };
}

/** The built-in kinds devstack touches; `returnDeleted` follows each real storage strategy. */
const BUILTINS: ResourceType[] = [
  builtin('', 'v1', 'ConfigMap', 'configmaps', true, ['cm'], false),
  builtin('', 'v1', 'Namespace', 'namespaces', false, ['ns'], true),
  builtin('', 'v1', 'Secret', 'secrets', true, [], false),
  builtin('', 'v1', 'Service', 'services', true, ['svc'], true),
  builtin('', 'v1', 'ServiceAccount', 'serviceaccounts', true, ['sa'], true),
  // Stored only: no controller runs them (nothing makes the pods or checks the rules).
  builtin('apps', 'v1', 'Deployment', 'deployments', true, ['deploy'], true),
  builtin('rbac.authorization.k8s.io', 'v1', 'Role', 'roles', true, [], true),
  builtin('rbac.authorization.k8s.io', 'v1', 'RoleBinding', 'rolebindings', true, [], true),
  builtin('discovery.k8s.io', 'v1', 'EndpointSlice', 'endpointslices', true, [], false),
];

export const groupVersion = (type: { group: string; version: string }) =>
  type.group ? `${type.group}/${type.version}` : type.version;

/** Objects of one group and plural share one storage, whatever version they were written in. */
export const storageKey = (type: ResourceType) => `${type.group}/${type.plural}`;

export class ResourceTypes {
  readonly #types: ResourceType[] = [...BUILTINS];

  register(def: CustomResourceDefinition): ResourceType {
    if (!def.group || !def.version || !def.kind || !def.plural) {
      throw new TypeError('a custom resource needs group, version, kind and plural');
    }
    const type: ResourceType = {
      group: def.group,
      version: def.version,
      kind: def.kind,
      plural: def.plural,
      singular: def.singular ?? def.kind.toLowerCase(),
      namespaced: def.namespaced ?? true,
      shortNames: def.shortNames ?? [],
      categories: def.categories ?? [],
      custom: true,
      returnDeleted: true,
    };
    const existing = this.#types.findIndex((t) => t.group === type.group && t.version === type.version && t.plural === type.plural);
    if (existing >= 0) this.#types[existing] = type;
    else this.#types.push(type);
    return type;
  }

  all(): readonly ResourceType[] {
    return this.#types;
  }

  byPath(group: string, version: string, plural: string): ResourceType | undefined {
    return this.#types.find((t) => t.group === group && t.version === version && t.plural === plural);
  }

  byKind(apiVersion: string | undefined, kind: string | undefined): ResourceType {
    const type = this.#types.find((t) => groupVersion(t) === apiVersion && t.kind === kind);
    if (!type) throw badRequest(`no kind "${kind}" is registered for version "${apiVersion}"`);
    return type;
  }

  groupVersions(): Map<string, string[]> {
    const groups = new Map<string, string[]>();
    for (const t of this.#types) {
      if (!t.group) continue;
      const versions = groups.get(t.group) ?? [];
      if (!versions.includes(t.version)) versions.push(t.version);
      groups.set(t.group, versions);
    }
    return groups;
  }
}

/** `/api`: the legacy group's versions. */
export function apiVersions(address: string) {
  return {
    kind: 'APIVersions',
    versions: ['v1'],
    serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: address }],
  };
}

/** `/apis`: every named group, the first version registered being the preferred one. */
export function apiGroupList(types: ResourceTypes) {
  const groups = [...types.groupVersions()].map(([name, versions]) => {
    const entries = versions.map((version) => ({ groupVersion: `${name}/${version}`, version }));
    return { name, versions: entries, preferredVersion: entries[0] };
  });
  return { kind: 'APIGroupList', apiVersion: 'v1', groups };
}

/** `/apis/<group>`: one group. */
export function apiGroup(types: ResourceTypes, group: string) {
  const versions = types.groupVersions().get(group);
  if (!versions) return undefined;
  const entries = versions.map((version) => ({ groupVersion: `${group}/${version}`, version }));
  return { kind: 'APIGroup', apiVersion: 'v1', name: group, versions: entries, preferredVersion: entries[0] };
}

/** `/api/v1`, `/apis/<group>/<version>`: the resources of one group version. */
export function apiResourceList(types: ResourceTypes, group: string, version: string) {
  const own = types.all().filter((t) => t.group === group && t.version === version);
  if (own.length === 0) return undefined;
  const resources = own
    .sort((a, b) => a.plural.localeCompare(b.plural))
    .map((t) => {
      const main: Record<string, unknown> = {
        name: t.plural,
        singularName: t.singular,
        namespaced: t.namespaced,
        kind: t.kind,
        verbs: VERBS,
      };
      if (t.shortNames.length > 0) main.shortNames = t.shortNames;
      if (t.categories.length > 0) main.categories = t.categories;
      return main;
    });
  return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: group ? `${group}/${version}` : version, resources };
}

export const VERSION_INFO = {
  major: '1',
  minor: '33',
  emulationMajor: '1',
  emulationMinor: '33',
  minCompatibilityMajor: '1',
  minCompatibilityMinor: '32',
  gitVersion: 'v1.33.0-devstack-fake',
  gitCommit: '0000000000000000000000000000000000000000',
  gitTreeState: 'clean',
  buildDate: '2025-04-23T00:00:00Z',
  goVersion: 'go1.24.2',
  compiler: 'gc',
  platform: 'linux/amd64',
};
