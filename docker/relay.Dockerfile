# syntax=docker/dockerfile:1
# devstack-relay: one registry watcher per cluster, streaming routing snapshots to sidecars and
# SDKs (packages/relay). Build from the repository root:
#   docker build -f docker/relay.Dockerfile -t devstack-relay .
# The build stage's commands live in docker/build.sh; docker/build-check.sh runs them without Docker.

FROM node:24-slim AS build
WORKDIR /src
COPY . .
RUN sh docker/build.sh relay /out

FROM node:24-slim
# Two malloc arenas instead of one per GC thread, as the sidecar image. The heap is not capped
# here: it follows the fleet the relay watches, and the chart sets --max-old-space-size under the
# pod's memory limit (charts/devstack-relay, heapMiB).
ENV NODE_ENV=production \
    MALLOC_ARENA_MAX=2 \
    DEVSTACK_PORT=7400 \
    DEVSTACK_ADMIN_PORT=7401
WORKDIR /app
# Owned by root and read-only for the user that runs it; the relay writes no file, so the root
# file system can be mounted read-only.
COPY --from=build /out /app
USER node
EXPOSE 7400 7401
# Healthy = ready: every namespace served has had its first sync (it stays ready, serving its last
# snapshot marked stale, when the API server is lost later).
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.DEVSTACK_ADMIN_PORT || 7401) + '/readyz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# Exec form: node is PID 1 and gets SIGTERM itself; the relay ends its streams and exits 0 (clients
# resume on another replica) and starts no child processes, so no init process is needed.
ENTRYPOINT ["node", "packages/relay/dist/cli.js"]
# Flags (or DEVSTACK_* variables) name what it serves: --namespace NS (repeatable) or --all-namespaces.
CMD ["--help"]
