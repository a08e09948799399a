/** The subset of ObjectMeta the fake reads or sets; everything else is stored as sent. */
export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string | null;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  [field: string]: unknown;
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
  [field: string]: unknown;
}

/** A kind the fake serves: one storage per group and plural, shared by every version of it. */
export interface ResourceType {
  group: string;
  version: string;
  kind: string;
  plural: string;
  singular: string;
  namespaced: boolean;
  shortNames: string[];
  categories: string[];
  /** Custom resources keep `kind`/`apiVersion` on list items; typed built-ins do not (as the real server). */
  custom: boolean;
  /** DELETE answers with the object (else with a Success Status), as each real strategy does. */
  returnDeleted: boolean;
}

export interface CustomResourceDefinition {
  group: string;
  version: string;
  kind: string;
  plural: string;
  singular?: string;
  namespaced?: boolean;
  shortNames?: string[];
  categories?: string[];
}

/** Names an object for the seeding helpers, e.g. `{ apiVersion: 'v1', kind: 'Service', namespace: 'default', name: 'a' }`. */
export interface ObjectRef {
  apiVersion: string;
  kind: string;
  name: string;
  namespace?: string;
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
