/*
 * nginx as the HTTP/2 peer: cleartext HTTP/2 with prior knowledge on its listener, `map` on the
 * routing key header to two upstream groups, and `grpc_pass` to the h2c upstream for every
 * request, the gRPC call and the plain GET alike. `proxy_pass` would do for the GET only over
 * HTTP/1.1 to the upstream, which is not the path being compared; `grpc_pass` is nginx's one
 * HTTP/2 client and forwards any method and body (it does not require gRPC content), keeping the
 * upstream connections open with `keepalive`.
 */
import { laneConfig, type NginxRoutes } from './nginx.ts';

/** [major, minor, patch] of `nginx/1.22.1` or `1.22.1`; NaN parts when the string is something else. */
export function parseNginxVersion(version: string): [number, number, number] {
  const m = /(\d+)\.(\d+)\.(\d+)/.exec(version);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : [Number.NaN, Number.NaN, Number.NaN];
}

/**
 * nginx 1.25.1 replaced `listen ... http2` by the `http2 on;` directive (the old form still works
 * there, with a warning); before 1.25.1 `http2` only exists as a listen parameter.
 */
export function http2Listen(port: number, version: string): string {
  const [major, minor, patch] = parseNginxVersion(version);
  const directive = major > 1 || (major === 1 && (minor > 25 || (minor === 25 && patch >= 1)));
  return directive ? `listen 127.0.0.1:${port};\n    http2 on;` : `listen 127.0.0.1:${port} http2;`;
}

export function nginxH2Config(dir: string, port: number, routes: NginxRoutes, version: string): string {
  return laneConfig(dir, routes, {
    source: 'bench/src/h2-nginx.ts for one h2 benchmark run',
    clients: [
      "# Keep client connections for the whole run, as the Node servers do; let the client's streams",
      "# per connection, not nginx's default cap of 128, set the concurrency.",
      'keepalive_requests 1000000;',
      'keepalive_timeout 120s;',
      'http2_max_concurrent_streams 1000;',
    ],
    listen: http2Listen(port, version),
    forward: ['grpc_pass grpc://lane_$devstack_lane;'],
  });
}
