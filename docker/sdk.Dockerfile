# syntax=docker/dockerfile:1
# The SDK for injection into Node apps with no image change (charts: devstack.sdk.inject). Build
# from the repository root:
#   docker build -f docker/sdk.Dockerfile -t devstack-sdk .
# The build stage's commands live in docker/build.sh (and docker/sdk-tree.sh); docker/build-check.sh
# runs them without Docker.

FROM node:24-slim AS build
WORKDIR /src
COPY . .
RUN sh docker/build.sh sdk /out

# Nothing here runs Node: the app's own Node loads the copy. The image only has to copy it, so a
# shell and cp are all it needs (about 4 MiB, and the SDK's 7 MiB).
FROM busybox:1.37
# Owned by root, readable by every user: the app may run as any user.
COPY --from=build /out /devstack-sdk
# The init container's user (the chart's runAsUser): it writes only the pod's emptyDir.
USER 1000:1000
# What the chart's init container runs (with its mountPath): the folder's content into the volume.
# A one-shot copy, so no health check.
CMD ["cp", "-R", "/devstack-sdk/.", "/devstack/sdk"]
