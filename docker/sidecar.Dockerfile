# syntax=docker/dockerfile:1
# The devstack routing sidecar. Build from the repository root:
#   docker build -f docker/sidecar.Dockerfile -t devstack-sidecar .
# The build stage's commands live in docker/build.sh; docker/build-check.sh runs them without Docker.

FROM node:24-slim AS build
WORKDIR /src
COPY . .
RUN sh docker/build.sh sidecar /out

FROM node:24-slim
ENV NODE_ENV=production \
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
