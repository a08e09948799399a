import http2, { type ClientHttp2Session, type OutgoingHttpHeaders } from 'node:http2';
import { syncBuiltinESMExports } from 'node:module';
import { diag } from '@opentelemetry/api';
import { rewriteRecord } from './headers.js';
import { normalizeHostname } from './hosts.js';
import { runtime } from './runtime.js';

/*
 * node:http2 client sessions are not given the key (the SDK writes it on fetch, undici, node:http
 * and grpc-js calls), but the headers an app hands `session.request` may hold it all the same: an
 * app forwarding its incoming headers, or OpenTelemetry's propagator injecting into gRPC metadata
 * for a grpc-js client the SDK does not instrument. Requests to a host outside the fleet lose
 * every carrier of it, judged by the authority the session was opened for and the request's own
 * `:authority` (grpc-js opens its sessions for the channel's target name, connected elsewhere).
 */

type Connect = (...args: unknown[]) => ClientHttp2Session;
type Request = ClientHttp2Session['request'];

function hostOf(authority: unknown): string | undefined {
  try {
    const url = authority instanceof URL ? authority : new URL(String(authority));
    return url.hostname.length === 0 ? undefined : normalizeHostname(url.hostname);
  } catch {
    return undefined;
  }
}

function inFleet(host: string | undefined): boolean {
  return host !== undefined && runtime().allowed(host);
}

function mayCarry(sessionHost: string | undefined, headers: OutgoingHttpHeaders): boolean {
  if (!inFleet(sessionHost)) return false;
  const authority = headers[':authority'] ?? headers['host'];
  if (authority === undefined) return true;
  return typeof authority === 'string' && inFleet(hostOf(`http://${authority}`));
}

function guard(session: ClientHttp2Session, sessionHost: string | undefined): void {
  const request = session.request;
  if (typeof request !== 'function') return;
  session.request = function (this: ClientHttp2Session, headers?: OutgoingHttpHeaders, ...rest: unknown[]) {
    let out = headers;
    try {
      if (headers !== null && typeof headers === 'object' && !Array.isArray(headers) && !mayCarry(sessionHost, headers)) {
        out = rewriteRecord(headers, runtime().codec, undefined);
      }
    } catch (error) {
      diag.error(`devstack: could not check a node:http2 request for the routing key: ${(error as Error).message}`);
    }
    return Reflect.apply(request, this, [out, ...rest]) as ReturnType<Request>;
  } as Request;
}

/** Wraps `http2.connect` (ESM named imports re-synced); returns the unwrapping. */
export function installHttp2(): () => void {
  const mod = http2 as unknown as { connect: Connect };
  const original = mod.connect;
  const connect: Connect = function (this: unknown, ...args: unknown[]) {
    const session = Reflect.apply(original, this, args) as ClientHttp2Session;
    try {
      guard(session, hostOf(args[0]));
    } catch (error) {
      diag.error(`devstack: could not guard a node:http2 session: ${(error as Error).message}`);
    }
    return session;
  };
  mod.connect = connect;
  syncBuiltinESMExports();
  return () => {
    // Only our own wrapper is taken off: something patched on top of it stays in charge.
    if (mod.connect === connect) mod.connect = original;
    syncBuiltinESMExports();
  };
}
