/*
 * What `register` adds to `init()` so that an app with no devstack code is covered: inbound HTTP
 * servers (node:http and https, so Express and Fastify) and the app's own @grpc/grpc-js, servers and
 * clients. Each step is on its own: one that cannot be taken is a debug line, never an error.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import { createRequire } from 'node:module';
import path from 'node:path';
import { diag } from '@opentelemetry/api';
import { LANE_HEADER } from '@devstack/core';
import { grpcClientOptions, grpcServerInterceptor, instrumentGrpc } from './grpc.js';
import type { GrpcModule } from './grpc-channel.js';
import { enter } from './inbound.js';
import { onClose } from './runtime.js';

type Emit = (this: unknown, event: string | symbol, ...args: unknown[]) => boolean;

function laneSetter(res: ServerResponse): (lane: string) => void {
  return (lane) => {
    if (!res.headersSent && !res.hasHeader(LANE_HEADER)) res.setHeader(LANE_HEADER, lane);
  };
}

/**
 * Every node:http(s) server's `request` event runs in the request's routing context, as with
 * `withRouting`: servers are made by the frameworks, so their prototype's `emit` is where all meet.
 */
export function routeServers(): void {
  for (const proto of [http.Server.prototype, https.Server.prototype] as unknown as Array<{ emit: Emit }>) {
    const original = proto.emit;
    const emit: Emit = function (event, ...args) {
      if (event !== 'request') return Reflect.apply(original, this, [event, ...args]) as boolean;
      const [req, res] = args as [IncomingMessage, ServerResponse];
      return enter(req, res, undefined, laneSetter(res), () => Reflect.apply(original, this, [event, ...args]) as boolean);
    };
    proto.emit = emit;
    onClose(() => {
      if (proto.emit === emit) proto.emit = original;
    });
  }
}

type Constructor = new (...args: never[]) => object;
type ClientOptionsArg = Parameters<typeof grpcClientOptions>[1];

/** The module `request` gives for `name`, or undefined when the app does not have it. */
function load(request: NodeJS.Require, name: string): unknown {
  try {
    return request(name);
  } catch {
    return undefined;
  }
}

/**
 * The app's @grpc/grpc-js (resolved from its main module, so the very copy its clients use):
 * propagation on every channel, the server interceptor on every server and, in proxyless mode, a
 * routing channel for every client made without a channel of its own (`new Client('inventory:50051',
 * ...)` goes to the lane the registry picks). grpc-js's index reads `Server` and `Client` from its
 * own modules on every access, so both are replaced there.
 */
export function routeGrpc(proxyless: boolean, main: string | undefined = process.argv[1]): void {
  const request = createRequire(path.resolve(main ?? path.join(process.cwd(), 'index.js')));
  let entry: string;
  try {
    entry = request.resolve('@grpc/grpc-js');
  } catch {
    return;
  }
  const grpc = load(request, entry) as (GrpcModule & { Server?: Constructor; Client?: Constructor }) | undefined;
  if (grpc === undefined) return;
  try {
    instrumentGrpc(grpc);
    const servers = load(request, path.join(path.dirname(entry), 'server.js')) as { Server?: Constructor } | undefined;
    if (servers?.Server !== undefined && servers.Server === grpc.Server) {
      const Original = servers.Server as new (options?: Record<string, unknown>) => object;
      const interceptor = grpcServerInterceptor(grpc);
      const Server = class extends Original {
        constructor(options?: Record<string, unknown>) {
          const theirs = Array.isArray(options?.['interceptors']) ? (options['interceptors'] as unknown[]) : [];
          super({ ...options, interceptors: [interceptor, ...theirs] });
        }
      };
      servers.Server = Server;
      onClose(() => {
        if (servers.Server === Server) servers.Server = Original;
      });
    } else {
      diag.debug('devstack: this @grpc/grpc-js has no server module where it was expected; gRPC servers are not covered');
    }
    if (!proxyless) return;
    const clients = load(request, path.join(path.dirname(entry), 'client.js')) as { Client?: Constructor } | undefined;
    if (clients?.Client === undefined || clients.Client !== grpc.Client) {
      diag.debug('devstack: this @grpc/grpc-js has no client module where it was expected; gRPC clients are not routed');
      return;
    }
    const Original = clients.Client as new (address: string, credentials: unknown, options?: ClientOptionsArg) => object;
    const routed = (options: ClientOptionsArg | undefined): ClientOptionsArg | undefined => {
      if (options?.channelOverride !== undefined) return options;
      try {
        return grpcClientOptions(grpc, options ?? {});
      } catch (error) {
        diag.debug(`devstack: a gRPC client left unrouted: ${(error as Error).message}`);
        return options;
      }
    };
    const Client = class extends Original {
      constructor(address: string, credentials: unknown, options?: ClientOptionsArg) {
        super(address, credentials, routed(options));
      }
    };
    clients.Client = Client;
    onClose(() => {
      if (clients.Client === Client) clients.Client = Original;
    });
  } catch (error) {
    diag.debug(`devstack: @grpc/grpc-js not covered: ${(error as Error).message}`);
  }
}
