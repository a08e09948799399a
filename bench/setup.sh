#!/usr/bin/env bash
# Installs the native peer (nginx), wrk, a second load generator used to cross-check that
# autocannon is not the bottleneck, and h2load (nghttp2-client), the HTTP/2 load generator of the
# h2 suite, from Debian's packages. Idempotent; exits 0 when nothing is missing. Exits non-zero
# (with one line saying why) when it cannot install: the suites then skip what needed the missing
# tool with that reason and run the rest.
set -uo pipefail

need=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v h2load >/dev/null 2>&1 || need+=(nghttp2-client)
[ ${#need[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "bench/setup: apt-get not found; install ${need[*]} by hand" >&2; exit 1
fi
as_root=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then as_root=(sudo -n)
  else echo "bench/setup: not root and no passwordless sudo; cannot install ${need[*]}" >&2; exit 1; fi
fi

export DEBIAN_FRONTEND=noninteractive
echo "bench/setup: installing ${need[*]} from Debian" >&2
"${as_root[@]}" apt-get update -qq >/dev/null 2>&1 || { echo "bench/setup: apt-get update failed" >&2; exit 1; }
# nginx-light is the small build; newer Debian releases only ship `nginx`.
if ! "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1; then
  alt=("${need[@]/nginx-light/nginx}")
  "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${alt[@]}" >/dev/null 2>&1 || {
    echo "bench/setup: apt-get install ${alt[*]} failed" >&2; exit 1; }
fi
# The Debian package starts a system nginx on :80; the bench runs its own on a free port.
"${as_root[@]}" service nginx stop >/dev/null 2>&1 || true
exit 0
