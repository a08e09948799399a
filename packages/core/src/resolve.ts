import type { Lane, Snapshot } from './snapshot.js';
import { isValidKey } from './key.js';

/**
 * Why a request went where it went.
 * - `match`: a ready feature copy of the service exists for the key.
 * - `no-key`: the request carried no key.
 * - `invalid-key`: the key was malformed or conflicting.
 * - `unknown-key`: no service in the snapshot has a copy for the key or a key it stacks on.
 * - `no-copy`: other services have a copy for the key, this one does not (the chain rule: base).
 * - `not-ready`: this service has a copy for the key but none of its targets is ready.
 * - `stacked`: the key's own copy is missing or not ready; a ready copy of a key it stacks on serves
 *   (the decision's lane is that copy's; the key carried on stays the request's).
 * - `unknown-service`: the service is not in the snapshot.
 */
export type Reason = 'match' | 'stacked' | 'no-key' | 'invalid-key' | 'unknown-key' | 'no-copy' | 'not-ready' | 'unknown-service';

export interface Decision {
  /** `reject` means: answer with an error, do not forward. */
  readonly outcome: 'feature' | 'base' | 'reject';
  readonly reason: Reason;
  readonly service: string;
  /** The lane to forward to; for `reject`, the lane that was not usable, if any. */
  readonly lane: Lane | undefined;
}

export interface ResolveOptions {
  /**
   * A key that names no usable copy of this service is an error instead of base: `unknown-key`
   * (no copy anywhere) and `not-ready`. `no-copy` still goes to base, or the chain rule breaks.
   */
  strict?: boolean;
}

/** Passed as the key when a carrier held an invalid key: never a valid key. */
export const INVALID_KEY = '';

/**
 * Pure feature-or-base resolution. A key with a copy of the service is decided by two map lookups
 * (service, then key), a miss by at most one more; the cost does not grow with the snapshot. It
 * returns decisions built with the snapshot, so it allocates nothing except for an unknown service.
 */
export function resolve(snapshot: Snapshot, service: string, key: string | undefined, options?: ResolveOptions): Decision {
  const entry = snapshot.services.get(service);
  if (entry === undefined) return Object.freeze({ outcome: 'reject', reason: 'unknown-service', service, lane: undefined });
  const d = entry.decisions;
  if (key === undefined) return d.noKey;
  const strict = options?.strict === true;
  // Keys in the map were validated when the snapshot was built, so a hit needs no validation.
  const known = (strict ? d.strictByKey : d.byKey).get(key);
  if (known !== undefined) return known;
  if (!isValidKey(key)) return d.invalidKey;
  if (!snapshot.known.has(key)) return strict ? d.strictUnknownKey : d.unknownKey;
  return d.noCopy;
}
