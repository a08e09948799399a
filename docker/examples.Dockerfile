# syntax=docker/dockerfile:1
# The example services (web, orders, payments), one image; the command picks the service:
#   docker build -f docker/examples.Dockerfile -t devstack-examples .
#   docker run -e DEVSTACK_LANE=feature1 -e HTTP_PROXY=http://127.0.0.1:15001 devstack-examples examples/src/services/payments.ts
# The build stage's commands live in docker/build.sh; docker/build-check.sh runs them without Docker.

FROM node:24-slim AS build
WORKDIR /src
COPY . .
RUN sh docker/build.sh examples /out

FROM node:24-slim
# HOST: listen on every interface of the container (the services default to loopback).
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080
WORKDIR /app
COPY --from=build /out /app
USER node
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# Exec form: node is PID 1 and gets SIGTERM itself; each service handles it (finishes in-flight
# requests, exits 0). Node runs the .ts files directly (type stripping, Node >= 22.18).
ENTRYPOINT ["node"]
CMD ["examples/src/services/web.ts"]
