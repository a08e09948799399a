#!/usr/bin/env bash
# Proves the Dockerfiles' build stage without a Docker engine: copies the build context (the
# repository minus the .dockerignore patterns) into a temporary folder, runs docker/build.sh there
# as the Dockerfile's RUN does, then runs what it built from the runtime tree alone, the way the
# runtime stage would (--help, a real start, /healthz, SIGTERM).
#
#   bash docker/build-check.sh [sidecar] [relay] [examples] [hooks] [sdk]     (default: all five)
#
# npm uses its cache first (prefer-offline); the registry is only asked for what the cache lacks.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(sidecar relay examples hooks sdk)
tmp="$(mktemp -d "${TMPDIR:-/tmp}/devstack-build-check-XXXXXX")"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
say() { echo "build-check: $*"; }
fail() { echo "build-check: FAIL: $*" >&2; exit 1; }
export npm_config_prefer_offline=true npm_config_update_notifier=false
unset NODE_OPTIONS

# The context, as `docker build .` would send it.
excludes=()
while IFS= read -r pattern; do
  case "$pattern" in '' | '#'*) continue ;; esac
  excludes+=("--exclude=${pattern#\*\*/}")
done <"$root/docker/sidecar.Dockerfile.dockerignore"
mkdir "$tmp/src"
tar -C "$root" "${excludes[@]}" -cf - . | tar -C "$tmp/src" -xf -

# Waits for a JSON log line with "msg":"$2" in file $1; prints the line.
wait_line() {
  for _ in $(seq 1 200); do
    if line="$(grep -m1 "\"msg\":\"$2\"" "$1")"; then echo "$line"; return 0; fi
    sleep 0.05
  done
  cat "$1" >&2
  return 1
}
http_get() { node -e "fetch(process.argv[1]).then(async (r) => { process.stdout.write(await r.text()); process.exit(r.ok ? 0 : 1); }, (e) => { console.error(e.message); process.exit(1); })" "$1"; }
# SIGTERM, then the exit code (Docker's stop).
stop() {
  kill -TERM "$1"
  local code=0
  wait "$1" || code=$?
  [ "$code" -eq 0 ] || fail "$2 exited $code after SIGTERM"
}

# The examples' build compiles the SDK too (its steps 1 and 2 are the sdk build's, and more).
sdk_compiled=0
for target in "${targets[@]}"; do
  out="$tmp/out-$target"
  start=$SECONDS
  if [ "$target" = sdk ] && [ "$sdk_compiled" = 1 ]; then
    say "sdk: npm ci and tsc --build as the examples' build just ran them, then sh docker/sdk-tree.sh (npm pack, npm install --omit=dev)"
    (cd "$tmp/src" && sh docker/sdk-tree.sh "$out") >"$tmp/build-$target.log" 2>&1 || { tail -30 "$tmp/build-$target.log" >&2; fail "sdk: sdk-tree.sh failed"; }
  else
    case "$target" in
      sdk) say "sdk: sh docker/build.sh sdk (npm ci, tsc --build, docker/sdk-tree.sh: npm pack, npm install --omit=dev)" ;;
      *) say "$target: sh docker/build.sh $target (npm ci, tsc --build, npm ci --omit=dev)" ;;
    esac
    (cd "$tmp/src" && sh docker/build.sh "$target" "$out") >"$tmp/build-$target.log" 2>&1 || { tail -30 "$tmp/build-$target.log" >&2; fail "$target: build.sh failed"; }
  fi
  [ "$target" != examples ] || sdk_compiled=1
  say "$target: built in $((SECONDS - start)) s, runtime tree $(du -sh "$out" | cut -f1)"
  for dev in typescript tap eslint; do
    [ ! -e "$out/node_modules/$dev" ] || fail "$target: dev dependency $dev is in the runtime tree"
  done
  # WORKDIR /app: only the runtime tree, from somewhere else.
  cd "$out"
  case "$target" in
    sidecar)
      node packages/sidecar/dist/cli.js --help | grep -q '^Usage: devstack-sidecar' || fail "sidecar --help"
      printf 'services:\n  web:\n    base: http://127.0.0.1:9\n' >"$tmp/registry.yaml"
      # Started as the image starts it: its ENTRYPOINT and the runtime settings of its ENV (read by
      # the bench's parser of the Dockerfile, one per line), so a flag node refuses fails here
      # rather than in a pod.
      runtime="$root/bench/src/runtime.ts"
      mapfile -t entrypoint < <(node --input-type=module -e "import { entrypoint } from '$runtime'; for (const w of entrypoint() ?? []) console.log(w);")
      mapfile -t image_env < <(node --input-type=module -e "import { imageRuntimeEnv } from '$runtime'; for (const [k, v] of Object.entries(imageRuntimeEnv())) console.log(k + '=' + v);")
      [ "${entrypoint[0]:-}" = node ] && [ ${#image_env[@]} -gt 0 ] || fail "cannot read the sidecar image's ENTRYPOINT and runtime ENV"
      env "${image_env[@]}" "${entrypoint[@]}" --registry "$tmp/registry.yaml" --admin-port 0 --admin-host 127.0.0.1 --outbound-port 0 >"$tmp/sidecar.log" 2>&1 &
      pids+=($!)
      wait_line "$tmp/sidecar.log" ready >/dev/null || fail "the built sidecar did not become ready"
      port="$(grep -m1 '"listener":"admin"' "$tmp/sidecar.log" | sed -E 's/.*"port":([0-9]+).*/\1/')"
      [ "$(http_get "http://127.0.0.1:$port/healthz")" = '{"status":"ok"}' ] || fail "sidecar /healthz"
      http_get "http://127.0.0.1:$port/routes" | grep -q '"web"' || fail "sidecar /routes"
      stop "${pids[-1]}" sidecar
      # The Kubernetes source and its client are in the tree: with no credentials the start stops
      # at the kubeconfig, not at a missing package.
      k8s="$(node packages/sidecar/dist/cli.js --registry k8s --kubeconfig "$tmp/none" --outbound-port 0 2>&1 || true)"
      grep -q 'no Kubernetes credentials' <<<"$k8s" || fail "sidecar --registry k8s: $k8s"
      say "sidecar: --help, start with the image's ENTRYPOINT (${entrypoint[*]}) and ${image_env[*]}, /healthz, /routes, SIGTERM (exit 0) and --registry k8s from the runtime tree"
      ;;
    relay)
      node packages/relay/dist/cli.js --help | grep -q 'devstack-relay' || fail "relay --help"
      # The Kubernetes source and its client load (they are imported before the kubeconfig is read):
      # a missing kubeconfig stops the start there (exit 1), not at a missing package.
      code=0
      out="$(node packages/relay/dist/cli.js --namespace shop --kubeconfig "$tmp/none" 2>&1)" || code=$?
      [ "$code" -eq 1 ] && grep -q "ENOENT.*$tmp/none" <<<"$out" || fail "relay with a missing kubeconfig exited $code: $out"
      # A real start against the repository's fake API server (a dev dependency, so not in the tree):
      # synced, /readyz, a stream's first snapshot, SIGTERM -> exit 0.
      fake="$root/packages/kube-fake/dist/index.js"
      [ -f "$fake" ] || fail "relay: $fake is not built (npx tsc --build packages/kube-fake)"
      node --input-type=module -e "
        import { startFakeApiServer } from '$fake';
        const api = await startFakeApiServer({ namespaces: ['shop'] });
        api.create({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'shop', labels: { 'devstack.io/service': 'web' } }, spec: { ports: [{ name: 'http', port: 80 }] } });
        await api.kubeconfig('$tmp/kubeconfig');
        console.log('fake ready');
        process.on('SIGTERM', () => api.close().then(() => process.exit(0)));
      " >"$tmp/fake.log" 2>&1 &
      pids+=($!)
      for _ in $(seq 1 200); do grep -q 'fake ready' "$tmp/fake.log" && break; sleep 0.05; done
      grep -q 'fake ready' "$tmp/fake.log" || { cat "$tmp/fake.log" >&2; fail "relay: the fake API server did not start"; }
      # The image's ENTRYPOINT and ENV (ports 7400 and 7401 replaced by free ones).
      env NODE_ENV=production MALLOC_ARENA_MAX=2 node packages/relay/dist/cli.js --namespace shop --kubeconfig "$tmp/kubeconfig" \
        --port 0 --admin-port 0 --host 127.0.0.1 --admin-host 127.0.0.1 2>"$tmp/relay.log" &
      pids+=($!)
      for _ in $(seq 1 200); do grep -q '"msg":"listening"' "$tmp/relay.log" && break; sleep 0.05; done
      line="$(grep -m1 '"msg":"listening"' "$tmp/relay.log")" || { cat "$tmp/relay.log" >&2; fail "the built relay did not listen"; }
      port="$(sed -E 's/.*"port":([0-9]+).*/\1/' <<<"$line")"
      admin="$(sed -E 's/.*"adminPort":([0-9]+).*/\1/' <<<"$line")"
      for _ in $(seq 1 200); do http_get "http://127.0.0.1:$admin/readyz" >/dev/null 2>&1 && break; sleep 0.05; done
      http_get "http://127.0.0.1:$admin/readyz" >/dev/null || fail "relay /readyz"
      first="$(node -e "
        const http = require('node:http');
        http.get('http://127.0.0.1:$port/v1/namespaces/shop/stream', (res) => {
          let text = '';
          res.setEncoding('utf8').on('data', (c) => { text += c; const nl = text.indexOf('\n'); if (nl >= 0) { console.log(text.slice(0, nl)); process.exit(0); } });
        }).on('error', (e) => { console.error(e.message); process.exit(1); });
      ")" || fail "relay stream"
      grep -q '"type":"snapshot"' <<<"$first" && grep -q '"web"' <<<"$first" || fail "relay stream: $first"
      stop "${pids[-1]}" relay
      kill -TERM "${pids[-2]}" 2>/dev/null || true
      wait "${pids[-2]}" 2>/dev/null || true
      say "relay: --help, a missing kubeconfig (exit 1), a start against the fake API server: /readyz, a stream's snapshot, SIGTERM (exit 0), from the runtime tree"
      ;;
    examples)
      [ -f node_modules/@devstack/sidecar/dist/cli.js ] || fail "examples: the sidecar is missing from the runtime tree"
      PORT=0 HOST=127.0.0.1 DEVSTACK_LANE=feature1 node examples/src/services/payments.ts >"$tmp/payments.log" 2>&1 &
      pids+=($!)
      line="$(wait_line "$tmp/payments.log" listening)" || fail "the payments example did not start"
      port="$(sed -E 's/.*"port":([0-9]+).*/\1/' <<<"$line")"
      [ "$(http_get "http://127.0.0.1:$port/healthz")" = '{"status":"ok"}' ] || fail "payments /healthz"
      [ "$(http_get "http://127.0.0.1:$port/")" = '{"service":"payments","lane":"feature1"}' ] || fail "payments GET /"
      stop "${pids[-1]}" payments
      say "examples: payments starts, /healthz, GET / and SIGTERM (exit 0) from the runtime tree"
      ;;
    hooks)
      node packages/hooks/dist/cli.js --help | grep -q '^Usage: devstack-hooks' || fail "hooks --help"
      code=0
      node packages/hooks/dist/cli.js ingressroute add --name edge --host example.com --key 'a`b' --service web 2>/dev/null || code=$?
      [ "$code" -eq 2 ] || fail "hooks: a bad key exited $code, not 2"
      # The Kubernetes client and the SQS client are in the tree: each command gets as far as its
      # missing credentials or its unreachable endpoint, and explains it (exit 1).
      out="$(node packages/hooks/dist/cli.js secret update --name s --set A=1 --kubeconfig "$tmp/none" 2>&1 || true)"
      grep -q 'DEVSTACK_HOOK_NO_CREDENTIALS' <<<"$out" || fail "hooks secret update: $out"
      out="$(AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x AWS_MAX_ATTEMPTS=1 node packages/hooks/dist/cli.js sqs delete --queue q --key k --endpoint http://127.0.0.1:9 2>&1 || true)"
      grep -q 'DEVSTACK_HOOK_SQS' <<<"$out" || fail "hooks sqs delete: $out"
      say "hooks: --help, a refused key (exit 2), the Kubernetes and SQS clients load, from the runtime tree"
      ;;
    sdk)
      for absent in @devstack/registry-kubernetes @kubernetes/client-node @devstack/sidecar; do
        [ ! -e "node_modules/$absent" ] || fail "sdk: $absent is in the tree (the injected SDK only carries the key)"
      done
      links="$(find . -type l ! -path './node_modules/.bin/*')"
      [ -z "$links" ] || fail "sdk: links in the tree (the copy must stand alone): $links"
      # The chart's init container: cp -R <image root>/. <mountPath>; then an app that has no
      # node_modules, ES module and CommonJS, loads it from NODE_OPTIONS and carries the key it was
      # called with on its own call.
      mnt="$tmp/sdk-mount"
      mkdir -p "$mnt" "$tmp/app"
      cp -R "$out/." "$mnt"
      cat >"$tmp/app/app.mjs" <<'APP'
import http from 'node:http';
const listen = (handler) => new Promise((ok) => { const s = http.createServer(handler).listen(0, '127.0.0.1', () => ok(s)); });
const back = await listen((req, res) => res.end(String(req.headers['uber-ctx-key'] ?? 'none')));
const front = await listen(async (req, res) => res.end(await (await fetch(`http://localhost:${back.address().port}/`)).text()));
const seen = await (await fetch(`http://127.0.0.1:${front.address().port}/`, { headers: { 'uber-ctx-key': 'feature1' } })).text();
console.log(seen);
back.close(); front.close();
APP
      sed -e "s/^import http from 'node:http';/const http = require('node:http');/" -e 's/^const back = await/(async () => { const back = await/' -e 's/^back.close(); front.close();/back.close(); front.close(); })();/' "$tmp/app/app.mjs" >"$tmp/app/app.cjs"
      for app in app.mjs app.cjs; do
        seen="$(cd "$tmp/app" && NODE_OPTIONS="--import $mnt/register.mjs" node "$app")" || fail "sdk: $app did not run with the SDK"
        [ "$seen" = feature1 ] || fail "sdk: $app carried '$seen', not feature1"
        seen="$(cd "$tmp/app" && DEVSTACK_DEFAULT_KEY=Not-A-Key NODE_OPTIONS="--import $mnt/register.mjs" node "$app" 2>"$tmp/sdk.err")" || fail "sdk: $app stopped on a bad variable"
        [ "$seen" = none ] && grep -q '^devstack: not started' "$tmp/sdk.err" || fail "sdk: $app with a bad variable: '$seen', $(cat "$tmp/sdk.err")"
      done
      say "sdk: no Kubernetes client or links in the tree, copied as the init container does, loaded by an ES module and a CommonJS app with no node_modules (key carried; a bad variable: one line, app unrouted)"
      ;;
  esac
  cd "$root"
done
say "ok"
