/** `devstack-sidecar --help`: every flag with the environment variable that sets it. */
export const HELP = `Usage: devstack-sidecar --registry FILE|k8s [listeners] [options]

Routes each request to the feature copy or the base version of its target service.
Every flag can also be set by the environment variable shown (for Helm values).

Registry
  --registry FILE|k8s       a YAML or JSON registry file (watched), or k8s:   DEVSTACK_REGISTRY
                            Services and EndpointSlices from the Kubernetes API
  --registry http://HOST:PORT  a devstack-relay: one namespace's routes, streamed
  --namespace NS            relay: the namespace followed (default POD_NAMESPACE)
                            k8s: namespaces to watch, repeatable or comma-separated
                            (default: the pod's own, else the kubeconfig's, else default)
                                                                             DEVSTACK_NAMESPACE
  --all-namespaces          k8s: watch every namespace (needs a ClusterRole)  DEVSTACK_ALL_NAMESPACES
  --kubeconfig PATH         k8s: credentials (default KUBECONFIG, else the pod's service account)
                                                                             DEVSTACK_KUBECONFIG
  --targets MODE            k8s: service (the Service's DNS name, default) or endpoints
                            (the pods' addresses, balanced by the sidecar)    DEVSTACK_TARGETS
  --watch-idle-timeout MS   k8s: restart a watch silent this long, default 90000
                                                                             DEVSTACK_WATCH_IDLE_TIMEOUT
  --registry-request-timeout MS  k8s: a list page or watch request unanswered this long is
                            retried, default 30000                           DEVSTACK_REGISTRY_REQUEST_TIMEOUT
  --registry-page-size N    k8s: objects per list page, default 500          DEVSTACK_REGISTRY_PAGE_SIZE
  --registry-max-delay MS   k8s: while events keep coming, a snapshot at least this often,
                            default 100                                      DEVSTACK_REGISTRY_MAX_DELAY
  --registry-report-interval MS  k8s: at most one failure report per watch, and one report of
                            unusable objects, this often, default 30000      DEVSTACK_REGISTRY_REPORT_INTERVAL

Listeners (at least one; port 0 picks a free port and logs it)
  --outbound-port PORT      the app's calls to other services come here      DEVSTACK_OUTBOUND_PORT
  --outbound-host ADDR      default 127.0.0.1                                DEVSTACK_OUTBOUND_HOST
  --passthrough             outbound on loopback only: calls for hosts outside the registry go
                            to the host they name, the key stripped (for HTTP_PROXY=the sidecar)
                                                                             DEVSTACK_PASSTHROUGH
  --inbound-port PORT       in front of the app                              DEVSTACK_INBOUND_PORT
  --app-port PORT           the app's port (required with --inbound-port)    DEVSTACK_APP_PORT
  --app-host ADDR           default 127.0.0.1                                DEVSTACK_APP_HOST
  --app-protocol P          http1 (default) or h2c: HTTP/2 with prior        DEVSTACK_APP_PROTOCOL
                            knowledge, for an app that is a gRPC server
  --inbound-host ADDR       default 0.0.0.0                                  DEVSTACK_INBOUND_HOST
  --edge-port PORT          routes by Host for preview URLs                  DEVSTACK_EDGE_PORT
  --edge-host ADDR          default 0.0.0.0                                  DEVSTACK_EDGE_HOST
  --domain NAME             base domain, repeatable or comma-separated       DEVSTACK_DOMAIN
                            (edge: <key>.<domain> and <domain>; inbound: read keys from Host)
  --entry SERVICE           service the edge sends requests to               DEVSTACK_ENTRY
  --drop-client-keys        edge: ignore keys in client headers (Host only)  DEVSTACK_DROP_CLIENT_KEYS
  --admin-port PORT         /healthz /readyz /metrics /routes /resolve       DEVSTACK_ADMIN_PORT
  --admin-host ADDR         default 0.0.0.0                                  DEVSTACK_ADMIN_HOST
  --admin-expose-routes     /routes and /resolve to every client, not only loopback  DEVSTACK_ADMIN_EXPOSE_ROUTES

Routing
  --default-key KEY         key for calls that arrive without one (a feature copy's own key)  DEVSTACK_DEFAULT_KEY
  --strict                  503 instead of base when a key has no ready copy  DEVSTACK_STRICT
  --key-name NAME           key name in headers and baggage (default uber-ctx-key)  DEVSTACK_KEY_NAME
  --cluster-domain NAME     Kubernetes cluster domain (default cluster.local)  DEVSTACK_CLUSTER_DOMAIN
  --max-hops N              refuse with 508 after N devstack hops (default 16)  DEVSTACK_MAX_HOPS
  --no-passive-health       a target whose connection fails before any request byte went out
                            is passed over for a while (its calls go to the lane's other targets,
                            then base; strict: 503); on by default         DEVSTACK_PASSIVE_HEALTH=false
  --eject-after N           consecutive connect failures that eject a target, default 1
                                                                             DEVSTACK_EJECT_AFTER
  --base-ejection MS        first ejection, doubled each time in a row, default 1000
                                                                             DEVSTACK_BASE_EJECTION
  --max-ejection MS         longest ejection: a copy back is used again within it, default 10000
                                                                             DEVSTACK_MAX_EJECTION

Limits (milliseconds, bytes)
  --connect-timeout MS      default 5000                                     DEVSTACK_CONNECT_TIMEOUT
  --headers-timeout MS      upstream response headers, default 60000         DEVSTACK_HEADERS_TIMEOUT
  --idle-timeout MS         between upstream body chunks, default 60000      DEVSTACK_IDLE_TIMEOUT
  --shutdown-timeout MS     in-flight grace after SIGTERM, default 25000     DEVSTACK_SHUTDOWN_TIMEOUT
  --max-header-size BYTES   default 32768; larger requests get 431           DEVSTACK_MAX_HEADER_SIZE
  --request-headers-timeout MS  a client's request headers, default 10000 (then 408)
                                                                             DEVSTACK_REQUEST_HEADERS_TIMEOUT
  --request-body-timeout MS     no request body byte from the client, default 30000 (then 408)
                                                                             DEVSTACK_REQUEST_BODY_TIMEOUT
  --response-drain-timeout MS   the client reads none of the response, default 30000 (then cut)
                                                                             DEVSTACK_RESPONSE_DRAIN_TIMEOUT
  --max-in-flight N         requests carried at once, all listeners, default 1024; more are shed
                            (HTTP/1.1: 503 DEVSTACK_OVERLOADED, HTTP/2: RST_STREAM REFUSED_STREAM)
                                                                             DEVSTACK_MAX_IN_FLIGHT
  --max-upstream-connections N  HTTP/1.1 connections per upstream origin, default 256 (more
                            requests wait for one); 0: no limit              DEVSTACK_MAX_UPSTREAM_CONNECTIONS
  --max-concurrent-streams N  HTTP/2 streams one client connection may open, default 100
                                                                             DEVSTACK_MAX_CONCURRENT_STREAMS
  --max-client-resets N     HTTP/2 streams a client connection may reset before their answer,
                            per 10 s, default 200; then GOAWAY ENHANCE_YOUR_CALM
                                                                             DEVSTACK_MAX_CLIENT_RESETS
  --max-invalid-frames N    invalid HTTP/2 frames before the connection is ended, default 100
                                                                             DEVSTACK_MAX_INVALID_FRAMES

Other
  --log-level LEVEL         debug, info, warn, error, silent (default info)  DEVSTACK_LOG_LEVEL
  -h, --help                this text
  -v, --version             the version

Signals: SIGTERM or SIGINT drain and stop; SIGHUP reads the registry file again now
(an invalid file is logged and the last good registry kept; requests in flight go on;
the k8s registry is kept current by its watches and ignores SIGHUP).

Tracing starts when the standard OpenTelemetry environment asks for an exporter
(OTEL_TRACES_EXPORTER, OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT).
`;
