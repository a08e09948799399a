/*
 * `@devstack/sdk/grpc`: the routing key through `@grpc/grpc-js` clients and servers, in its own
 * entry point so that only apps that import it need grpc-js (an optional peer) and its types. Every
 * function takes the app's own grpc-js module: the SDK never loads one, so it never works on a
 * second copy the app's clients do not use.
 */
import type { ChannelInterface, ClientOptions, Interceptor, Metadata, ServerInterceptor } from '@grpc/grpc-js';
import { context, diag, type Context } from '@opentelemetry/api';
import { ConfigError, LANE_HEADER, describeUntrusted, type MutableHeaderBag } from '@devstack/core';
import { ensureContextManager, outboundKey } from './context.js';
import { RoutingChannel, carrierBag, decorate, ownChannels, withKey, type GrpcCall, type GrpcModule } from './grpc-channel.js';
import { parseGrpcTarget, type GrpcTarget } from './grpc-target.js';
import { checkLane, extractRoutingContext, type InboundOptions } from './inbound.js';
import { ensurePropagation } from './otel-globals.js';
import { onClose, runtime } from './runtime.js';

export type { GrpcModule } from './grpc-channel.js';
export type { InboundOptions } from './inbound.js';

type Part = keyof GrpcModule;

const EXPECTED = "grpc must be the app's @grpc/grpc-js module (import * as grpc from '@grpc/grpc-js')";

function checkModule(grpc: unknown, what: string, parts: readonly Part[]): asserts grpc is GrpcModule {
  if ((typeof grpc !== 'object' && typeof grpc !== 'function') || grpc === null) throw new ConfigError([`${what}: ${EXPECTED}, got ${describeValue(grpc)}`]);
  const module = grpc as Record<string, unknown>;
  const missing = parts.filter((p) => module[p] === undefined);
  if (missing.length === 0) return;
  // A grpc-js without server interceptors is the right module, only too old.
  const old = missing.includes('ServerInterceptingCall') && module['Channel'] !== undefined ? ' (server interceptors need @grpc/grpc-js 1.10 or newer)' : '';
  throw new ConfigError([`${what}: ${EXPECTED}, got an object without ${missing.join(', ')}${old}`]);
}

function describeValue(value: unknown): string {
  if (value === undefined || value === null) return String(value);
  return typeof value === 'string' ? `the string ${describeUntrusted(value)}` : `${String(value)} (${typeof value})`;
}

function checkOptions(options: unknown, what: string): void {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new ConfigError([`${what}: options must be an object, got ${Array.isArray(options) ? 'an array' : describeValue(options)}`]);
  }
}

/**
 * A client interceptor: each call carries the routing key in context (else the copy's default key)
 * in its metadata, as the plain `uber-ctx-key` entry and merged into `baggage`. Without a key the
 * metadata is left as it is. It does not know the channel's target, so it does not consult the
 * allow-list: give it only to clients of your own services (`grpcClientOptions` and
 * `instrumentGrpc` do check the target).
 *
 * `new Client(address, credentials, { interceptors: [grpcInterceptor(grpc)] })`. Interceptors given
 * to one call replace the client's in grpc-js, so such calls need it in their own list.
 */
export function grpcInterceptor(grpc: GrpcModule): Interceptor {
  checkModule(grpc, 'grpcInterceptor', ['InterceptingCall', 'Metadata']);
  return (options, nextCall) => {
    let key: string | undefined;
    const codec = runtime().codec;
    try {
      key = outboundKey();
    } catch (error) {
      diag.error(`devstack: gRPC call left without the routing key: ${(error as Error).message}`);
    }
    if (key === undefined) return new grpc.InterceptingCall(nextCall(options));
    const give = key;
    return new grpc.InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        let md = metadata;
        try {
          md = withKey(metadata, codec, give);
        } catch (error) {
          diag.error(`devstack: could not set the routing key on a gRPC call: ${(error as Error).message}`);
        }
        next(md, listener);
      },
    });
  };
}

function inboundBag(metadata: Metadata, host: string | undefined): MutableHeaderBag {
  const bag = carrierBag(metadata, runtime().codec);
  // The authority, for a key in the first Host label under a configured domain.
  if (host !== undefined && host.length > 0) bag['host'] = host;
  return bag;
}

function setLane(metadata: Metadata, lane: string): void {
  if (metadata.get(LANE_HEADER).length === 0) metadata.set(LANE_HEADER, lane);
}

/**
 * A server interceptor (grpc-js 1.10 or newer): reads the key from each call's metadata with the
 * carriers, precedence and conflict rule of HTTP inbound (an invalid key is counted and is no key;
 * a feature copy's lane stands in for a missing one) and runs the handler, and the events it
 * listens to, in the OpenTelemetry context carrying it, so the calls it makes carry the key. The
 * response metadata says the lane (`x-devstack-lane`) unless the handler set it.
 *
 * `new grpc.Server({ interceptors: [grpcServerInterceptor(grpc)] })`; `{ lane }` overrides
 * `init({ lane })` for this server.
 */
export function grpcServerInterceptor(grpc: GrpcModule, options: InboundOptions = {}): ServerInterceptor {
  checkModule(grpc, 'grpcServerInterceptor', ['ServerInterceptingCall', 'Metadata']);
  checkOptions(options, 'grpcServerInterceptor');
  checkLane(options.lane, 'grpcServerInterceptor');
  // grpc instrumentation runs handlers in `propagation.extract(ROOT_CONTEXT, metadata)`.
  ensurePropagation();
  const lane = options.lane;
  return (_method, call) => {
    let ctx: Context | undefined;
    let served = lane ?? 'base';
    let sentMetadata = false;
    const run = <T>(fn: () => T): T => (ctx === undefined ? fn() : context.with(ctx, fn));
    return new grpc.ServerInterceptingCall(call, {
      start(next) {
        next({
          onReceiveMetadata(metadata, next) {
            try {
              ensureContextManager();
              const host = typeof call.getHost === 'function' ? call.getHost() : undefined;
              ctx = extractRoutingContext(inboundBag(metadata, host), context.active(), lane);
              served = lane ?? runtime().lane;
            } catch (error) {
              diag.error(`devstack: inbound gRPC routing skipped: ${(error as Error).message}`);
            }
            // The handler of a streaming request is called from here, of a unary one from the half close.
            run(() => next(metadata));
          },
          onReceiveMessage(message, next) {
            run(() => next(message));
          },
          onReceiveHalfClose(next) {
            run(next);
          },
        });
      },
      sendMetadata(metadata, next) {
        sentMetadata = true;
        try {
          setLane(metadata, served);
        } catch (error) {
          diag.debug(`devstack: no lane on gRPC response metadata: ${(error as Error).message}`);
        }
        next(metadata);
      },
      sendStatus(status, next) {
        let out = status;
        if (!sentMetadata) {
          // A trailers-only answer: its one header block is where the lane goes.
          try {
            const metadata = status.metadata?.clone() ?? new grpc.Metadata();
            setLane(metadata, served);
            out = { ...status, metadata };
          } catch (error) {
            diag.debug(`devstack: no lane on gRPC status metadata: ${(error as Error).message}`);
          }
        }
        next(out);
      },
    });
  };
}

/**
 * Options for a grpc-js client (`new OrdersClient(address, credentials, grpcClientOptions(grpc))`,
 * or spread your own in as the second argument). The client gets a channel that, for every call:
 * - in proxyless mode, sends it to the feature copy or base the routing step picks for the service
 *   its address (or `grpc.default_authority`) names, over one grpc-js channel per target made with
 *   the client's credentials and options, the authority kept as written; a service the registry
 *   does not know, a refused route (strict mode, no ready target) or a registry not loaded yet ends
 *   the call with a gRPC status (UNIMPLEMENTED or UNAVAILABLE) whose details start with the devstack
 *   code; the response metadata says the lane;
 * - otherwise (a sidecar routes), sends it to the address as written;
 * - writes the key into its metadata, for any host in proxyless mode (registry targets), else only
 *   when the allow-list lets the address's host have it (and strips it otherwise).
 * A `channelFactoryOverride` of yours makes each per-target channel; `channelOverride` (one fixed
 * channel) cannot be routed and is refused.
 */
export function grpcClientOptions(grpc: GrpcModule, options: ClientOptions = {}): ClientOptions {
  checkModule(grpc, 'grpcClientOptions', ['Channel', 'Metadata', 'status', 'connectivityState']);
  checkOptions(options, 'grpcClientOptions');
  if (options.channelOverride !== undefined) {
    throw new ConfigError(['grpcClientOptions: channelOverride fixes one channel for every call, and routing picks one per call: give a channelFactoryOverride instead']);
  }
  const factory = options.channelFactoryOverride;
  if (factory !== undefined && typeof factory !== 'function') {
    throw new ConfigError([`grpcClientOptions: channelFactoryOverride must be a function, got ${describeValue(factory)}`]);
  }
  return {
    ...options,
    channelFactoryOverride: (address, credentials, clientOptions) => new RoutingChannel(grpc, address, credentials, clientOptions, factory),
  };
}

type CreateCall = ChannelInterface['createCall'];

const installed = new WeakMap<object, () => void>();
const targets = new WeakMap<object, GrpcTarget>();

function targetOf(channel: ChannelInterface): GrpcTarget {
  let target = targets.get(channel);
  if (target === undefined) targets.set(channel, (target = parseGrpcTarget(channel.getTarget())));
  return target;
}

/**
 * Automatic propagation for every call made on `grpc`'s own channels (`grpc.Channel`, which every
 * client uses unless given another channel), whenever the client was created: the key in context
 * is written into the call's metadata after every interceptor has run (so it also holds for calls
 * given their own interceptors) when the allow-list lets the channel's target host have it, and
 * stripped from the metadata when it does not. It does not route: in proxyless mode, create the
 * clients of registry services with `grpcClientOptions` (a warning names targets that are not).
 *
 * Patches `grpc.Channel.prototype.createCall` of the module given; returns the function that
 * removes it, which `sdk.close()` also runs. Calling it again for the same module changes nothing.
 */
export function instrumentGrpc(grpc: GrpcModule): () => void {
  checkModule(grpc, 'instrumentGrpc', ['Channel', 'Metadata']);
  const proto = grpc.Channel.prototype as unknown as { createCall: CreateCall };
  const existing = installed.get(proto);
  if (existing !== undefined) return existing;
  ensureContextManager();
  const original = proto.createCall;
  const warned = new Set<string>();
  const createCall = function (this: ChannelInterface, ...args: Parameters<CreateCall>): GrpcCall {
    const call = Reflect.apply(original, this, args) as GrpcCall;
    if (ownChannels.has(this)) return call;
    try {
      const rt = runtime();
      const target = targetOf(this);
      const may = target.hostname !== undefined && rt.allowed(target.hostname);
      const key = outboundKey();
      // A target outside the fleet loses every carrier, key in context or not: metadata forwarded
      // from an incoming call can hold one the SDK read no key from.
      if (!may) return decorate(call, { codec: rt.codec, key: null });
      if (key === undefined) return call;
      if (target.hostname !== undefined && rt.router?.serviceFor(target.hostname) !== undefined && !warned.has(target.hostname)) {
        warned.add(target.hostname);
        diag.warn(`devstack: gRPC calls to ${describeUntrusted(this.getTarget())} are not routed (a registry service, its client made without grpcClientOptions): they go to the address as written`);
      }
      return decorate(call, { codec: rt.codec, key });
    } catch (error) {
      diag.error(`devstack: could not set the routing key on a gRPC call: ${(error as Error).message}`);
      return call;
    }
  };
  proto.createCall = createCall as CreateCall;
  const uninstall = (): void => {
    off();
    installed.delete(proto);
    // Only our own patch is taken off: something patched on top of it stays in charge.
    if (proto.createCall === createCall) proto.createCall = original;
  };
  const off = onClose(uninstall);
  installed.set(proto, uninstall);
  return uninstall;
}
