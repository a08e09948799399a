#!/bin/sh
# The build stage of docker/*.Dockerfile, kept in one file so that docker/build-check.sh runs exactly
# these commands without a Docker engine. Run from the root of the build context (the repository):
#
#   sh docker/build.sh sidecar|relay|examples|hooks|sdk OUT
#
# OUT receives the runtime tree: package.json and node_modules with the production dependencies of
# the target only, and each needed workspace's package.json, dist/ (or src/ for the examples, which
# Node runs by type stripping) and nested node_modules. The runtime stage copies OUT and nothing else.
# For sdk, OUT is what docker/sdk-tree.sh makes: the SDK installed from its packed tarballs, the
# tree the chart's init container copies into a pod.
set -eu

target="${1:-}"
out="${2:-}"
case "$target" in
  sidecar)
    workspace=@devstack/sidecar
    projects="packages/sidecar packages/registry-kubernetes packages/registry-relay"
    dirs="packages/core packages/registry-file packages/registry-kubernetes packages/registry-relay packages/sidecar"
    ;;
  relay)
    workspace=@devstack/relay
    projects="packages/relay"
    dirs="packages/core packages/registry-relay packages/registry-kubernetes packages/relay"
    ;;
  hooks)
    workspace=@devstack/hooks
    projects="packages/hooks"
    dirs="packages/core packages/registry-kubernetes packages/hooks"
    ;;
  sdk)
    projects="packages/sdk packages/registry-relay"
    ;;
  examples)
    workspace=@devstack/examples
    projects="packages/sdk packages/sidecar packages/registry-kubernetes packages/registry-relay"
    dirs="packages/core packages/registry-file packages/registry-kubernetes packages/registry-relay packages/sdk packages/sidecar examples"
    ;;
  *)
    echo "usage: sh docker/build.sh sidecar|relay|examples|hooks|sdk OUT" >&2
    exit 2
    ;;
esac
[ -n "$out" ] || { echo "usage: sh docker/build.sh sidecar|relay|examples|hooks|sdk OUT" >&2; exit 2; }

# 1. Every dependency the build needs, exactly as locked.
npm ci --no-audit --no-fund
# 2. Compile (tsc --build follows the project references: core, registry, ...).
npx tsc --build $projects
if [ "$target" = sdk ]; then
  # 3-4. The packed SDK and its runtime dependencies, installed on their own.
  sh docker/sdk-tree.sh "$out"
  exit 0
fi
# 3. Production dependencies of the target's workspaces only: a clean install, no dev dependencies,
#    nothing another workspace (bench, the SDK's test frameworks) needs.
rm -rf node_modules packages/*/node_modules bench/node_modules examples/node_modules
npm ci --omit=dev --no-audit --no-fund --workspace "$workspace"
# 4. The runtime tree. node_modules/@devstack/* are relative symlinks into it, so it moves as a whole.
rm -rf "$out"
mkdir -p "$out"
cp -a package.json node_modules "$out/"
for dir in $dirs; do
  mkdir -p "$out/$dir"
  cp -a "$dir/package.json" "$out/$dir/"
  case "$dir" in
    examples) cp -a "$dir/src" "$out/$dir/" ;;
    *) cp -a "$dir/dist" "$out/$dir/" ;;
  esac
  if [ -d "$dir/node_modules" ]; then cp -a "$dir/node_modules" "$out/$dir/"; fi
done
# Build leftovers the runtime never reads.
find "$out" -path '*/node_modules' -prune -o \( -name '*.tsbuildinfo' -o -name '*.d.ts' -o -name '*.d.ts.map' \) -type f -print | xargs rm -f
