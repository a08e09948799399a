/*
 * What the gRPC entry point does below the interceptor API: the key written into a call's metadata
 * at the bottom of the interceptor stack (after every interceptor, OpenTelemetry's included, has
 * touched it), and the proxyless channel that picks a target per call. Types only from grpc-js:
 * every constructor comes from the module the app passes in, so the SDK never loads a copy of its own.
 */
import type * as grpcTypes from '@grpc/grpc-js';
import type { ChannelCredentials, ChannelInterface, ClientOptions, InterceptingListener, Metadata, StatusObject } from '@grpc/grpc-js';
import { diag } from '@opentelemetry/api';
import { LANE_HEADER, NO_LANE, REFUSALS, upstreamFailure, type KeyCodec, type MutableHeaderBag, type Refusal, type Snapshot } from '@devstack/core';
import { getRoutingKey, outboundKey } from './context.js';
import { RoutingRejectedError } from './errors.js';
import { applyKey } from './headers.js';
import { hostOfAuthority, parseGrpcTarget, type GrpcTarget } from './grpc-target.js';
import type { ParsedTarget, Route, Router } from './router.js';
import { onClose, runtime } from './runtime.js';

/** What the SDK uses of the app's `@grpc/grpc-js` module (`import * as grpc from '@grpc/grpc-js'`). */
export type GrpcModule = Pick<typeof grpcTypes, 'Channel' | 'InterceptingCall' | 'ServerInterceptingCall' | 'Metadata' | 'status' | 'connectivityState'>;

/** grpc-js's transport-level call, what `Channel.createCall` returns (not exported by name). */
export type GrpcCall = ReturnType<ChannelInterface['createCall']>;
type CreateCallArgs = Parameters<ChannelInterface['createCall']>;
type ChannelFactory = NonNullable<ClientOptions['channelFactoryOverride']>;

function carrierNames(codec: KeyCodec): readonly string[] {
  return [codec.name, 'baggage', codec.jaegerHeader];
}

/** The key's carriers in `metadata` as a header bag (gRPC metadata keys are lower-case header names). */
export function carrierBag(metadata: Metadata, codec: KeyCodec): MutableHeaderBag {
  const bag: MutableHeaderBag = {};
  for (const name of carrierNames(codec)) {
    const values: string[] = [];
    for (const value of metadata.get(name)) if (typeof value === 'string') values.push(value);
    if (values.length > 0) bag[name] = values.length === 1 ? values[0] : values;
  }
  return bag;
}

/**
 * A copy of `metadata` with the key written as the HTTP carriers write it (plain entry, merged into
 * `baggage`), or with every carrier of it removed when `key` is null. A copy, because the app may
 * reuse its Metadata object for calls made in other contexts.
 */
export function withKey(metadata: Metadata, codec: KeyCodec, key: string | null): Metadata {
  const found = carrierBag(metadata, codec);
  if (key === null && Object.keys(found).length === 0) return metadata;
  const bag = applyKey(found, codec, key ?? undefined);
  const out = metadata.clone();
  for (const name of carrierNames(codec)) {
    out.remove(name);
    const value = bag[name];
    if (value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) out.add(name, String(v));
  }
  return out;
}

interface Decoration {
  readonly codec: KeyCodec;
  /** Write this key, or strip the carriers (null); undefined leaves the metadata alone. */
  readonly key: string | null | undefined;
  /** A routed call: the lane its response metadata reports, as the sidecar's `x-devstack-lane`. */
  readonly lane?: string | undefined;
  /** Runs once, when the call's status arrives (every grpc-js call ends with exactly one). */
  readonly onEnd?: (() => void) | undefined;
  /** A routed call's target: a call that could not reach it is reported as the sidecar reports it. */
  readonly origin?: string | undefined;
}

/** gRPC's status code for it (the spec's number: the SDK holds no grpc-js module here). */
const UNAVAILABLE = 14;

/**
 * A routed call that never reached its target (grpc-js's "No connection established. Last error:
 * Error: connect ECONNREFUSED ...") gets the details the sidecar gives the same failure, the
 * devstack code first (core's table of upstream failures), so an app branches on one code whichever
 * does the routing. Any other status, an upstream's own UNAVAILABLE included, is left as it is.
 */
export function unreachableDetails(status: StatusObject, origin: string): string | undefined {
  if (status.code !== UNAVAILABLE || !status.details.startsWith('No connection established')) return undefined;
  const cause = /\b(E[A-Z]{3,})\b/.exec(status.details)?.[1];
  const failure = upstreamFailure({ code: cause });
  const code = failure.code === 'DEVSTACK_UPSTREAM_ERROR' ? 'DEVSTACK_UPSTREAM_UNREACHABLE' : failure.code;
  return `${code}: upstream ${origin} failed: ${cause ?? status.details}`;
}

function observed(listener: InterceptingListener, d: Decoration): InterceptingListener {
  const { lane, onEnd, origin } = d;
  let headers = false;
  let ended = false;
  return {
    onReceiveMetadata(metadata: Metadata) {
      headers = true;
      if (lane !== undefined) setQuietly(metadata, LANE_HEADER, lane);
      listener.onReceiveMetadata(metadata);
    },
    onReceiveMessage(message: unknown) {
      listener.onReceiveMessage(message);
    },
    onReceiveStatus(status: StatusObject) {
      // A trailers-only answer has no response headers: the lane goes where its headers went.
      if (lane !== undefined && !headers) setQuietly(status.metadata, LANE_HEADER, lane);
      const details = origin === undefined || headers ? undefined : unreachableDetails(status, origin);
      if (details !== undefined) status = { ...status, details };
      if (!ended) {
        ended = true;
        onEnd?.();
      }
      listener.onReceiveStatus(status);
    },
  };
}

function setQuietly(metadata: Metadata, name: string, value: string): void {
  try {
    metadata.set(name, value);
  } catch (error) {
    diag.debug(`devstack: could not set ${name} on gRPC metadata: ${(error as Error).message}`);
  }
}

/**
 * Writes the key when the call starts, at the bottom of the interceptor stack. The key was chosen
 * when the call was created (in the app's context: grpc-js creates the transport call synchronously
 * inside the client method), since interceptors above may start it later from another context.
 */
export function decorate(call: GrpcCall, d: Decoration): GrpcCall {
  if (d.key === undefined && d.lane === undefined && d.onEnd === undefined) return call;
  const start = call.start;
  call.start = function (this: GrpcCall, metadata: Metadata, listener: InterceptingListener): void {
    let md = metadata;
    if (d.key !== undefined) {
      try {
        md = withKey(metadata, d.codec, d.key);
      } catch (error) {
        diag.error(`devstack: could not set the routing key on a gRPC call: ${(error as Error).message}`);
      }
    }
    const l = d.lane === undefined && d.onEnd === undefined ? listener : observed(listener, d);
    Reflect.apply(start, this, [md, l]);
  };
  return call;
}

let calls = 0;

/**
 * A call the SDK answers itself (a refusal), the way grpc-js reports a failed call: no metadata,
 * one status, on a later tick. `details` starts with the devstack code, as the sidecar's gRPC
 * errors do; the status metadata carries the lane.
 */
export function refusedCall(grpc: GrpcModule, code: number, details: string, lane: string): GrpcCall {
  let status = { code, details };
  let listener: InterceptingListener | undefined;
  let done = false;
  const number = ++calls;
  const finish = (): void => {
    if (done || listener === undefined) return;
    done = true;
    const metadata = new grpc.Metadata();
    setQuietly(metadata, LANE_HEADER, lane);
    listener.onReceiveStatus({ code: status.code, details: status.details, metadata });
  };
  const call: GrpcCall = {
    start(_metadata, l) {
      listener = l;
      process.nextTick(finish);
    },
    cancelWithStatus(c, d) {
      // Cancelled before its status went out: the caller's status wins, as with a real call.
      if (!done) status = { code: c, details: d };
    },
    sendMessageWithContext(context) {
      context.callback?.();
    },
    startRead() {},
    halfClose() {},
    getPeer: () => 'unknown',
    getCallNumber: () => number,
    setCredentials() {},
    getAuthContext: () => null,
  };
  return call;
}

interface FailoverHost {
  /** The channel to `target`, counted as in use. */
  delegate(target: ParsedTarget): Delegate;
  /** `d` could not connect: no longer in use by this call, and not reused for later ones. */
  failed(d: Delegate): void;
  /** `d` is no longer in use by this call (cancelled before it was made). */
  release(d: Delegate): void;
  /** The transport call on `d`, decorated for `route` (its end releases `d`); `guard` sees its events first. */
  call(d: Delegate, route: Route, guard: (listener: InterceptingListener) => InterceptingListener): GrpcCall;
  /** The call that answers a refused route (strict mode, nothing left). */
  refused(route: Route): GrpcCall;
}

/** Operations of a call kept to be replayed on another target; past it, the call is not moved. */
const MAX_REPLAY = 64;

/**
 * A routed call with passive health. It is created on its target's channel once that channel is
 * connected, and grpc-js's "No connection established" (the connection went as the call was
 * made) also means nothing of the call reached the target: either way the call moves on to the
 * lane's next target, then base (core's failOver), whatever its kind, with what the app did so far
 * (messages, half-close, reads) replayed. A call that heard its target's headers stays where it
 * is. A channel that does not connect within `connectTimeoutMs` counts as failed. When no
 * target is left the call fails as grpc-js fails it (UNAVAILABLE); strict mode answers
 * `DEVSTACK_NO_READY_UPSTREAM`.
 */
class FailoverCall implements GrpcCall {
  readonly #grpc: GrpcModule;
  readonly #deadline: number;
  readonly #host: FailoverHost;
  readonly #number = ++calls;
  #route: Route;
  #d: Delegate;
  #connectBy = 0;
  #real: GrpcCall | undefined;
  /** Everything the app did after start, for a replay; undefined once the call cannot move. */
  #ops: Array<(call: GrpcCall) => void> | undefined = [];
  #metadata: Metadata | undefined;
  #listener: InterceptingListener | undefined;
  /** The app cancelled it, or it was given to a call for good. */
  #settled = false;

  constructor(grpc: GrpcModule, args: CreateCallArgs, route: Route, d: Delegate, host: FailoverHost) {
    this.#grpc = grpc;
    const deadline = args[1];
    this.#deadline = deadline instanceof Date ? deadline.getTime() : typeof deadline === 'number' ? deadline : Infinity;
    this.#route = route;
    this.#d = d;
    this.#host = host;
  }

  start(metadata: Metadata, listener: InterceptingListener): void {
    this.#metadata = metadata;
    this.#listener = listener;
    this.#connectBy = Date.now() + (runtime().router?.connectTimeoutMs ?? 5000);
    this.#wait();
  }

  #wait(): void {
    if (this.#settled) return;
    const states = this.#grpc.connectivityState;
    let state: number;
    try {
      state = this.#d.channel.getConnectivityState(true);
    } catch {
      state = states.SHUTDOWN;
    }
    if (state === states.READY) {
      runtime().router?.connected(this.#route);
      return this.#make();
    }
    if (state === states.TRANSIENT_FAILURE || state === states.SHUTDOWN) return this.#moveOn();
    const now = Date.now();
    // The call's own deadline first: grpc-js answers DEADLINE_EXCEEDED for it as it always does.
    if (now >= this.#deadline) return this.#make();
    if (now >= this.#connectBy) return this.#moveOn();
    try {
      this.#d.channel.watchConnectivityState(state, Math.min(this.#deadline, this.#connectBy), () => this.#wait());
    } catch {
      this.#moveOn();
    }
  }

  /** The target could not be reached: the next one, a refusal, or (none left) grpc-js's own failure. */
  #moveOn(): void {
    if (!this.#next()) this.#make();
  }

  #next(): boolean {
    if (this.#ops === undefined) return false;
    const next = runtime().router?.failOver(this.#route, 'connect');
    if (next === undefined) return false;
    this.#host.failed(this.#d);
    this.#route = next;
    if (next.target === undefined) {
      this.#use(this.#host.refused(next));
      return true;
    }
    this.#d = this.#host.delegate(next.target);
    this.#connectBy = Date.now() + (runtime().router?.connectTimeoutMs ?? 5000);
    this.#real = undefined;
    this.#wait();
    return true;
  }

  #make(): void {
    this.#use(this.#host.call(this.#d, this.#route, this.#guard));
  }

  #use(call: GrpcCall): void {
    this.#real = call;
    call.start(this.#metadata!, this.#listener!);
    for (const op of this.#ops ?? []) op(call);
  }

  /** Sees the transport call's events before the lane is added: a call that never got a connection moves on. */
  readonly #guard = (listener: InterceptingListener): InterceptingListener => {
    const d = this.#d;
    return {
      onReceiveMetadata: (metadata: Metadata) => {
        this.#ops = undefined;
        listener.onReceiveMetadata(metadata);
      },
      onReceiveMessage: (message: unknown) => listener.onReceiveMessage(message),
      onReceiveStatus: (status: StatusObject) => {
        const unsent = status.code === UNAVAILABLE && status.details.startsWith('No connection established');
        if (unsent && !this.#settled && d === this.#d && this.#next()) return;
        listener.onReceiveStatus(status);
      },
    };
  };

  #later(op: (call: GrpcCall) => void): void {
    if (this.#ops !== undefined) {
      if (this.#ops.length < MAX_REPLAY) this.#ops.push(op);
      else this.#ops = undefined;
    }
    if (this.#real !== undefined) op(this.#real);
  }

  cancelWithStatus(code: Parameters<GrpcCall['cancelWithStatus']>[0], details: string): void {
    this.#settled = true;
    this.#ops = undefined;
    if (this.#real !== undefined) return this.#real.cancelWithStatus(code, details);
    // Cancelled while connecting: nothing was sent, the app gets its own status.
    this.#host.release(this.#d);
    const listener = this.#listener;
    if (listener !== undefined) process.nextTick(() => listener.onReceiveStatus({ code, details, metadata: new this.#grpc.Metadata() }));
  }

  sendMessageWithContext(context: Parameters<GrpcCall['sendMessageWithContext']>[0], message: Buffer): void {
    // A replayed message must not tell the app twice that it was written.
    const callback = context.callback;
    let told = false;
    const once = { ...context, callback: callback === undefined ? undefined : () => (told ? undefined : ((told = true), callback())) };
    this.#later((c) => c.sendMessageWithContext(once, message));
  }

  startRead(): void {
    this.#later((c) => c.startRead());
  }

  halfClose(): void {
    this.#later((c) => c.halfClose());
  }

  setCredentials(...args: Parameters<GrpcCall['setCredentials']>): void {
    this.#later((c) => c.setCredentials(...args));
  }

  getPeer(): string {
    return this.#real?.getPeer() ?? 'unknown';
  }

  getCallNumber(): number {
    return this.#number;
  }

  getAuthContext(): ReturnType<GrpcCall['getAuthContext']> {
    return this.#real?.getAuthContext() ?? null;
  }
}

/** Where a registry target is reached: `host:port`, brackets around an IPv6 literal. */
function grpcAddress(target: ParsedTarget): string {
  return `${target.hostname.includes(':') ? `[${target.hostname}]` : target.hostname}:${target.port}`;
}

const originsBySnapshot = new WeakMap<Snapshot, ReadonlySet<string>>();

function originsOf(snapshot: Snapshot): ReadonlySet<string> {
  let origins = originsBySnapshot.get(snapshot);
  if (origins === undefined) {
    const set = new Set<string>();
    for (const entry of snapshot.services.values()) {
      for (const t of entry.base.targets) set.add(t.origin);
      for (const lane of entry.features.values()) for (const t of lane.targets) set.add(t.origin);
    }
    originsBySnapshot.set(snapshot, (origins = set));
  }
  return origins;
}

/** Channels whose calls the SDK decorates itself: the automatic instrumentation leaves them alone. */
export const ownChannels = new WeakSet<object>();

interface Delegate {
  readonly origin: string;
  readonly channel: ChannelInterface;
  /** Calls created on it that have not ended. */
  active: number;
  /** Its target left the registry: closed once its last call ends. */
  retired: boolean;
}

type Plan =
  | { readonly kind: 'direct'; readonly key: string | null | undefined }
  | { readonly kind: 'routed'; readonly delegate: Delegate; readonly key: string | undefined; readonly lane: string; readonly route: Route }
  | { readonly kind: 'refused'; readonly code: number; readonly details: string; readonly lane: string };

const live = new Set<WeakRef<RoutingChannel>>();
const collected = new FinalizationRegistry<WeakRef<RoutingChannel>>((ref) => live.delete(ref));
let hooked = false;

function track(channel: RoutingChannel): WeakRef<RoutingChannel> {
  const ref = new WeakRef(channel);
  live.add(ref);
  collected.register(channel, ref, ref);
  if (!hooked) {
    hooked = true;
    // Persistent: every sdk.close() releases the connections opened for routing until then.
    onClose(() => {
      for (const r of live) r.deref()?.release();
    });
  }
  return ref;
}

const REFUSAL_STATUS: Readonly<Record<Refusal, 'UNIMPLEMENTED' | 'UNAVAILABLE'>> = {
  // gRPC's HTTP-to-gRPC mapping of the sidecar's 404 and 503, which the sidecar answers gRPC calls with.
  'unknown-service': 'UNIMPLEMENTED',
  'no-feature-copy': 'UNAVAILABLE',
  'no-ready-target': 'UNAVAILABLE',
};

/**
 * The channel of a client made with `grpcClientOptions()`. Each call is sent where the routing step
 * says, through one grpc-js channel per target origin (made lazily with the client's own
 * credentials and options, the authority kept as the app wrote it). Without proxyless routing every
 * call goes to the address as written, with the key when the allow-list lets that host have it.
 */
export class RoutingChannel implements ChannelInterface {
  readonly #grpc: GrpcModule;
  readonly #address: string;
  readonly #credentials: ChannelCredentials;
  readonly #options: ClientOptions;
  readonly #factory: ChannelFactory | undefined;
  /** Where calls to the address as written go: the allow-list is asked about it. */
  readonly #destination: GrpcTarget;
  /** What calls name (the address, or `grpc.default_authority`): the registry is asked about it. */
  readonly #authority: GrpcTarget;
  readonly #delegates = new Map<string, Delegate>();
  readonly #ref: WeakRef<RoutingChannel>;
  #direct: ChannelInterface | undefined;
  #seen: Snapshot | undefined;
  #closed = false;

  constructor(grpc: GrpcModule, address: string, credentials: ChannelCredentials, options: ClientOptions, factory: ChannelFactory | undefined) {
    this.#grpc = grpc;
    this.#address = address;
    this.#credentials = credentials;
    this.#options = options;
    this.#factory = factory;
    this.#destination = parseGrpcTarget(address);
    const authority = options['grpc.default_authority'];
    this.#authority = typeof authority === 'string' ? { authority, hostname: hostOfAuthority(authority) } : this.#destination;
    this.#ref = track(this);
  }

  createCall(...args: CreateCallArgs): GrpcCall {
    if (this.#closed) throw new Error('Channel has been shut down');
    const codec = runtime().codec;
    let plan: Plan;
    try {
      plan = this.#plan(args[2]);
    } catch (error) {
      diag.error(`devstack: could not route a gRPC call: ${(error as Error).message}`);
      // Sent on as written only where nothing routes (a sidecar does); a routed call must not land in the wrong lane.
      plan =
        runtime().router === undefined
          ? { kind: 'direct', key: undefined }
          : { kind: 'refused', code: this.#grpc.status.INTERNAL, details: 'DEVSTACK_INTERNAL: devstack: the call could not be routed (the diag log says why)', lane: NO_LANE };
    }
    if (plan.kind === 'refused') return refusedCall(this.#grpc, plan.code, plan.details, plan.lane);
    if (plan.kind === 'direct') return decorate(this.#directChannel().createCall(...args), { codec, key: plan.key });
    const d = plan.delegate;
    // With passive health a call waits for its target's connection and, should it fail, moves on.
    if (runtime().router?.health !== undefined) return this.#failover(args, plan, codec);
    const call = d.channel.createCall(...args);
    // Counted from creation, not start: a call created but never started keeps its channel open
    // (until the client or the SDK closes) rather than risk closing one a call is about to use.
    d.active++;
    return decorate(call, { codec, key: plan.key, lane: plan.lane, onEnd: () => this.#ended(d), origin: d.origin });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.release();
    live.delete(this.#ref);
    collected.unregister(this.#ref);
  }

  /** Closes every channel opened so far (the SDK is closing); later calls open what they need again. */
  release(): void {
    for (const d of this.#delegates.values()) d.channel.close();
    this.#delegates.clear();
    this.#direct?.close();
    this.#direct = undefined;
    this.#seen = undefined;
  }

  getTarget(): string {
    return this.#address;
  }

  getConnectivityState(tryToConnect: boolean): ReturnType<ChannelInterface['getConnectivityState']> {
    if (this.#closed) return this.#grpc.connectivityState.SHUTDOWN;
    return this.#current().getConnectivityState(tryToConnect);
  }

  watchConnectivityState(...args: Parameters<ChannelInterface['watchConnectivityState']>): void {
    if (this.#closed) throw new Error('Channel has been shut down');
    this.#current().watchConnectivityState(...args);
  }

  getChannelzRef(): ReturnType<ChannelInterface['getChannelzRef']> {
    return this.#current().getChannelzRef();
  }

  #plan(host: string | null | undefined): Plan {
    const rt = runtime();
    const router = rt.router;
    if (router === undefined) {
      const hostname = this.#destination.hostname;
      // Outside the fleet every carrier goes, key in context or not (forwarded metadata holds them too).
      if (hostname === undefined || !rt.allowed(hostname)) return { kind: 'direct', key: null };
      return { kind: 'direct', key: outboundKey() };
    }
    const named = typeof host === 'string' && host.length > 0 ? { authority: host, hostname: hostOfAuthority(host) } : this.#authority;
    const shown = named.authority ?? this.#address;
    const snapshot = router.snapshot;
    if (snapshot === undefined) {
      const why = rt.unrouted(shown);
      const code = (why as { code?: unknown } | undefined)?.code ?? 'DEVSTACK_REGISTRY_UNAVAILABLE';
      return { kind: 'refused', code: this.#grpc.status.UNAVAILABLE, details: `${String(code)}: ${why?.message ?? 'devstack: proxyless routing has no registry snapshot'}`, lane: NO_LANE };
    }
    if (snapshot !== this.#seen) this.#retire(snapshot);
    const service = named.hostname === undefined ? undefined : router.serviceFor(named.hostname);
    const route = service === undefined ? undefined : router.route(service, getRoutingKey());
    if (route === undefined) return this.#refused(shown, 'unknown-service', NO_LANE);
    if (route.target === undefined) return this.#refused(route.service, route.refusal!, route.lane);
    return { kind: 'routed', delegate: this.#delegate(route.target), key: route.key, lane: route.lane, route };
  }

  #failover(args: CreateCallArgs, plan: Plan & { kind: 'routed' }, codec: KeyCodec): GrpcCall {
    plan.delegate.active++;
    return new FailoverCall(this.#grpc, args, plan.route, plan.delegate, {
      delegate: (target) => {
        const d = this.#delegate(target);
        d.active++;
        return d;
      },
      failed: (d) => {
        // A channel that could not connect backs off on its own clock; the next call after the
        // target's ejection gets a fresh one, so a copy that is back is used again at once.
        d.retired = true;
        this.#ended(d);
      },
      release: (d) => this.#ended(d),
      call: (d, route, guard) => {
        const raw = d.channel.createCall(...args);
        const start = raw.start;
        raw.start = function (this: GrpcCall, metadata: Metadata, listener: InterceptingListener): void {
          Reflect.apply(start, this, [metadata, guard(listener)]);
        };
        return decorate(raw, { codec, key: route.key, lane: route.lane, onEnd: () => this.#ended(d), origin: d.origin });
      },
      refused: (route) => {
        const refusal = this.#refused(route.service, route.refusal!, route.lane) as Plan & { kind: 'refused' };
        return refusedCall(this.#grpc, refusal.code, refusal.details, refusal.lane);
      },
    });
  }

  #refused(service: string, refusal: Refusal, lane: string): Plan {
    const error = new RoutingRejectedError(service, refusal);
    return { kind: 'refused', code: this.#grpc.status[REFUSAL_STATUS[refusal]], details: `${REFUSALS[refusal].code}: ${error.message}`, lane };
  }

  /** The channel a call made now would use, for connectivity questions (`client.waitForReady`). */
  #current(): ChannelInterface {
    try {
      const router: Router | undefined = runtime().router;
      const hostname = this.#authority.hostname;
      if (router?.snapshot !== undefined && hostname !== undefined) {
        const service = router.serviceFor(hostname);
        const target = service === undefined ? undefined : router.peek(service, getRoutingKey());
        if (target !== undefined) return this.#delegate(target).channel;
      }
    } catch (error) {
      diag.debug(`devstack: gRPC connectivity asked of the address as written: ${(error as Error).message}`);
    }
    return this.#directChannel();
  }

  #open(address: string, options: ClientOptions): ChannelInterface {
    const channel = this.#factory !== undefined ? this.#factory(address, this.#credentials, options) : new this.#grpc.Channel(address, this.#credentials, options);
    ownChannels.add(channel);
    return channel;
  }

  #directChannel(): ChannelInterface {
    return (this.#direct ??= this.#open(this.#address, this.#options));
  }

  #delegate(target: ParsedTarget): Delegate {
    let d = this.#delegates.get(target.origin);
    if (d === undefined) {
      const authority = this.#authority.authority;
      // The server sees the authority the app meant (`orders:50051`), as the Host of a routed HTTP call.
      const options = authority === undefined || this.#options['grpc.default_authority'] !== undefined ? this.#options : { ...this.#options, 'grpc.default_authority': authority };
      d = { origin: target.origin, channel: this.#open(grpcAddress(target), options), active: 0, retired: false };
      this.#delegates.set(target.origin, d);
    } else if (d.retired) {
      d.retired = false;
    }
    return d;
  }

  /** A new snapshot: channels to targets it no longer has are closed once their calls end. */
  #retire(snapshot: Snapshot): void {
    this.#seen = snapshot;
    const origins = originsOf(snapshot);
    for (const d of [...this.#delegates.values()]) {
      if (origins.has(d.origin)) continue;
      d.retired = true;
      if (d.active === 0) this.#drop(d);
    }
  }

  #ended(d: Delegate): void {
    d.active--;
    if (d.retired && d.active === 0 && this.#delegates.get(d.origin) === d) this.#drop(d);
  }

  #drop(d: Delegate): void {
    this.#delegates.delete(d.origin);
    d.channel.close();
  }

  /** How many per-target channels are open, by origin: for tests and diagnostics. */
  get openTargets(): readonly string[] {
    return [...this.#delegates.keys()];
  }
}
