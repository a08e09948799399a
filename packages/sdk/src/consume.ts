import { diag } from '@opentelemetry/api';
import { INVALID_KEY, isValidKey, resolve, type KeyReading, type Reason, type RegistrySource, type Snapshot } from '@devstack/core';
import { runtime } from './runtime.js';

/**
 * Whose message is this: the lane `resolve(snapshot, service, key)` picks for the consumer's own
 * service, the decision an HTTP call to that service would get. A copy consumes its key; base
 * consumes no key, invalid keys, unknown keys and keys whose copy of this service is missing or not
 * ready, so a copy that goes away hands its messages to base at the next snapshot, and takes them
 * back when it is ready again.
 */
export interface LaneOptions {
  /** The consumer's registry service. Default: `init({ service })` (`DEVSTACK_SERVICE`). */
  service?: string | undefined;
  /** The consumer's lane: `base` or its copy's key. Default: `init({ lane })` (`DEVSTACK_DEFAULT_KEY`). */
  lane?: string | undefined;
  /** The registry to decide from. Default: the source `init({ registry })` routes with. */
  registry?: RegistrySource | undefined;
  /** A key with no ready copy is no lane's (until the bound, for SQS). Default: `init({ strict })`. */
  strict?: boolean | undefined;
}

/**
 * Core's reasons, and `no-registry`: no snapshot to decide from (no registry given to `init()`,
 * or its first snapshot not loaded yet).
 */
export type ConsumeReason = Reason | 'no-registry';

export interface ConsumeDecision {
  /** This lane processes the message. */
  readonly consume: boolean;
  /**
   * The lane whose message it is: `base` or a key; undefined when the registry cannot tell (no
   * snapshot, the service not in it, a strict refusal): then a copy takes only its own key, and base
   * the rest only past the SQS bound (or at once where messages fan out).
   */
  readonly owner: string | undefined;
  readonly reason: ConsumeReason;
  /** The valid key the message carries, if any. */
  readonly key: string | undefined;
  /** The consumer's own lane and service. */
  readonly lane: string;
  readonly service: string | undefined;
}

const warned = new Set<string>();

function warnOnce(what: string, message: string): void {
  if (warned.has(what)) return;
  warned.add(what);
  diag.warn(message);
}

/** What to decide from: the options given, else what `init()` configured. */
function settings(options: LaneOptions | undefined): { lane: string; service: string | undefined; snapshot: Snapshot | undefined; strict: boolean } {
  const rt = runtime();
  const lane = options?.lane ?? rt.lane;
  const registry = options?.registry;
  return {
    lane,
    service: options?.service ?? rt.service,
    snapshot: registry !== undefined ? registry.current() : rt.router?.snapshot,
    strict: options?.strict ?? rt.router?.strict ?? false,
  };
}

/**
 * The lane decision for a message carrying `key` (a string as read from the message, undefined for
 * none; anything that is not a routing key is an invalid key), or for a key reading.
 */
export function consumeDecision(key: string | KeyReading | undefined | null, options?: LaneOptions): ConsumeDecision {
  const { lane, service, snapshot, strict } = settings(options);
  // A reading's problem makes it an invalid key, as the routing step asks resolution.
  const asked = key === null || key === undefined ? undefined : typeof key === 'string' ? key : (key.key ?? (key.problem !== undefined ? INVALID_KEY : undefined));
  const valid = asked !== undefined && isValidKey(asked) ? asked : undefined;
  if (snapshot === undefined || service === undefined || !snapshot.services.has(service)) {
    if (service === undefined) warnOnce('service', 'devstack: lane consumption needs the consumer\'s service (init({ service }) or DEVSTACK_SERVICE); until then a copy takes only its own key');
    else if (snapshot !== undefined) warnOnce(`service:${service}`, `devstack: the registry has no service ${service}; a copy takes only its own key`);
    const reason: ConsumeReason = asked === undefined ? 'no-key' : valid === undefined ? 'invalid-key' : snapshot === undefined ? 'no-registry' : 'unknown-service';
    // The registry cannot tell whether this key's copy is there: a copy takes its own key (it is
    // running), what carries no valid key is base's, and any other key is nobody's for now.
    const owner = valid === undefined ? 'base' : valid === lane ? lane : undefined;
    return Object.freeze({ consume: owner === lane, owner, reason, key: valid, lane, service });
  }
  const decision = resolve(snapshot, service, asked, { strict });
  const owner = decision.outcome === 'reject' ? undefined : decision.lane!.name;
  return Object.freeze({ consume: owner === lane, owner, reason: decision.reason, key: valid, lane, service });
}

/** Whether a message carrying `key` is this consumer's lane's to process. */
export function shouldConsume(key: string | KeyReading | undefined | null, options?: LaneOptions): boolean {
  return consumeDecision(key, options).consume;
}

/**
 * Where every lane receives every message (an SNS topic with a copy's queue subscribed, a Kafka
 * topic read by one group per lane), whether this consumer processes it or drops it:
 * - its lane's messages, as `shouldConsume`;
 * - a copy also processes its own key when the registry now says it is not ready: base dropped that
 *   message only when it saw the copy ready, so the copy may hold the only one left (around a
 *   readiness change a message may be processed twice, never by no lane);
 * - base also processes what the registry cannot assign (no snapshot, unknown service).
 */
export function fanOutConsume(decision: ConsumeDecision): boolean {
  if (decision.consume) return true;
  if (decision.lane !== 'base') return decision.key === decision.lane;
  return decision.owner === undefined;
}

/** The consumer group of a lane where each lane reads every record: `<group>-<key>`, base `<group>`. */
export function laneGroupId(group: string, options?: Pick<LaneOptions, 'lane'>): string {
  const lane = options?.lane ?? runtime().lane;
  return lane === 'base' ? group : `${group}-${lane}`;
}
