# syntax=docker/dockerfile:1
# The example services (web, orders, payments over HTTP; inventory over gRPC), one image; the command
# picks the service:
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
# A listening port is the check: the same for the HTTP services and for inventory, which speaks
# HTTP/2 (gRPC) only and would refuse an HTTP/1.1 /healthz.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["node", "-e", "require('node:net').connect(Number(process.env.PORT || 8080), '127.0.0.1').on('connect', function () { this.destroy(); process.exit(0); }).on('error', () => process.exit(1))"]
# Exec form: node is PID 1 and gets SIGTERM itself; each service handles it (finishes in-flight
# requests, exits 0). Node runs the .ts files directly (type stripping, Node >= 22.18).
ENTRYPOINT ["node"]
CMD ["examples/src/services/web.ts"]
