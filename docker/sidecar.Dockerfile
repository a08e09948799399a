# syntax=docker/dockerfile:1
# The devstack routing sidecar. Build from the repository root:
#   docker build -f docker/sidecar.Dockerfile -t devstack-sidecar .
# The build stage's commands live in docker/build.sh; docker/build-check.sh runs them without Docker.

FROM node:24-slim AS build
WORKDIR /src
COPY . .
RUN sh docker/build.sh sidecar /out

FROM node:24-slim
# Memory: a sidecar runs in every pod. An 8 MiB semi-space (Node grows its young generation to
# 32 MiB per semi-space under load) and a capped old generation keep the peak RSS at 50
# connections under 128 MiB for every body the benchmark sends (GET 64 B and 64 KiB, POST 1 MiB:
# 112-126 MiB, Node's defaults 156-235) for 2.5-4.9% more GC work per request; the sidecar frees
# large body buffers as it writes them, so bodies do not add to it. Two malloc arenas instead of
# one per GC thread, and a fixed trim threshold: glibc returns the free top of its main arena
# once 128 KiB are free, where by default it raises the threshold after large frees and keeps
# more (GET 64 B for 20 s: 110-122 MiB against 115-124, same CPU). Measured with `npm run footprint` and `npm run bench` (bench/README.md); the
# numbers and the pod resources are in packages/sidecar/README.md, "Footprint". Raise
# --max-old-space-size, and the memory limit, for registries over about 20 000 (service, key)
# entries: at 100 000 the sidecar runs out of heap at start.
ENV NODE_ENV=production \
    NODE_OPTIONS="--max-semi-space-size=8 --max-old-space-size=128" \
    MALLOC_ARENA_MAX=2 \
    MALLOC_TRIM_THRESHOLD_=131072 \
    DEVSTACK_REGISTRY=/etc/devstack/registry.yaml \
    DEVSTACK_OUTBOUND_PORT=15001 \
    DEVSTACK_ADMIN_PORT=15020
WORKDIR /app
# Owned by root and read-only for the user that runs it.
COPY --from=build /out /app
USER node
EXPOSE 15001 15020
# Healthy = ready to route: a registry snapshot is loaded and the sidecar is not draining.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.DEVSTACK_ADMIN_PORT || 15020) + '/readyz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# Exec form: node is PID 1 and gets SIGTERM itself; the sidecar handles it (drains, exits 0) and
# starts no child processes, so no init process is needed.
ENTRYPOINT ["node", "packages/sidecar/dist/cli.js"]
# Flags (or DEVSTACK_* variables) add listeners, e.g. --inbound-port 15006 --app-port 8080.
CMD []
