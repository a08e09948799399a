# syntax=docker/dockerfile:1
# devstack-hooks: the Helm hook jobs of a feature copy (shared IngressRoute rules, secrets, SQS
# queues). Build from the repository root:
#   docker build -f docker/hooks.Dockerfile -t devstack-hooks .
# The build stage's commands live in docker/build.sh; docker/build-check.sh runs them without Docker.

FROM node:24-slim AS build
WORKDIR /src
COPY . .
RUN sh docker/build.sh hooks /out

FROM node:24-slim
ENV NODE_ENV=production
WORKDIR /app
# Owned by root and read-only for the user that runs it.
COPY --from=build /out /app
USER node
# No HEALTHCHECK: a hook is a Job that runs one command and exits; its exit code is its health
# (0 done, 1 a failure it explains, 2 a usage error). Exec form: node is PID 1 and gets SIGTERM
# (an activeDeadlineSeconds) itself; a write is either made or not, each one is a single request.
ENTRYPOINT ["node", "packages/hooks/dist/cli.js"]
CMD ["--help"]
