#!/bin/sh
# The SDK as the devstack-sdk image carries it (docker/sdk.Dockerfile): what the chart's init
# container copies into a pod for NODE_OPTIONS=--import <mountPath>/register.mjs. Run from the root
# of the build context, with packages/core, packages/registry-file, packages/registry-relay and packages/sdk compiled:
#
#   sh docker/sdk-tree.sh OUT
#
# OUT gets register.mjs (docker/sdk-register.mjs) and node_modules with the SDK and its runtime
# dependencies, @opentelemetry/api included (a peer the app may not have), installed from the
# workspaces' `npm pack` tarballs as a team installs them: plain folders, no workspace links, no dev
# or optional packages (no Kubernetes client: the injected SDK carries the key, the sidecar routes).
# The app loads nothing from its own node_modules for it.
set -eu

out="${1:-}"
[ -n "$out" ] || { echo "usage: sh docker/sdk-tree.sh OUT" >&2; exit 2; }
packs="$(mktemp -d "${TMPDIR:-/tmp}/devstack-sdk-packs-XXXXXX")"
trap 'rm -rf "$packs"' EXIT
npm pack --silent --pack-destination "$packs" \
  --workspace @devstack/core --workspace @devstack/registry-file --workspace @devstack/registry-relay --workspace @devstack/sdk >/dev/null
rm -rf "$out"
mkdir -p "$out"
cp docker/sdk-register.mjs "$out/register.mjs"
printf '{ "name": "devstack-sdk-injected", "private": true }\n' >"$out/package.json"
(cd "$out" && npm install --omit=dev --no-save --no-package-lock --ignore-scripts --no-audit --no-fund --loglevel=error "$packs"/*.tgz)
# Read by the app's user, whoever it is; written by nobody.
chmod -R a+rX,go-w "$out"
