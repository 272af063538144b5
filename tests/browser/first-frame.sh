#!/usr/bin/env bash
# Measures a release build of leanrtc against headless Chromium, inside a private network
# namespace (as ./test.sh runs the tests): the time from the WHEP POST to the first decoded
# frame (N plays), and the server's CPU per viewer (K Chromium viewers, then 10 str0m
# viewers, against 0 viewers). Not a test: it prints figures. Run as root (or where
# `unshare -rn` works), after `./test.sh` or `(cd tests/browser && npm ci)`.
#   tests/browser/first-frame.sh [N=10] [K=10] [W=10]
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-10} K=${2:-10} W=${3:-10}

if [ -z "${LEANRTC_IN_NS:-}" ]; then
  cargo build --release --bin leanrtc --locked
  cargo test -p leanrtc --test str0m_play --locked --no-run
  [ -d tests/browser/node_modules/playwright-core ] || (cd tests/browser && npm ci --no-audit --no-fund)
  exec tests/netns.sh env LEANRTC_IN_NS=1 "$0" "$@"
fi

log=$(mktemp) errlog=$(mktemp)
target/release/leanrtc --http 127.0.0.1:0 --udp 127.0.0.1:0 2>"$log" &
server=$!
cleanup() {
  # The browser runs in a process group of its own; first-frame.js reports its pid.
  for p in $(grep -o '"pids":\[[0-9,]*' "$errlog" | grep -o '[0-9][0-9]*'); do kill -KILL -- "-$p" 2>/dev/null || true; done
  kill "$server" 2>/dev/null; wait "$server" 2>/dev/null
  rm -f "$log" "$errlog"
}
trap cleanup EXIT
for _ in $(seq 100); do grep -q 'ready: open' "$log" && break; sleep 0.1; done
http=$(grep -o 'http=[0-9.:]*' "$log" | head -1 | cut -d= -f2)
[ -n "$http" ] || { cat "$log"; echo "leanrtc did not start" >&2; exit 1; }
echo "leanrtc $(target/release/leanrtc --version 2>/dev/null | tail -1) (release, pid $server) on http://$http; $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"

(cd tests/browser && node first-frame.js "http://$http" "$server" "$N" "$K" "$W") 2>"$errlog" ||
  { grep -v '^{"pids"' "$errlog" >&2; exit 1; }

echo "-- 10 str0m viewers in process (crates/server/tests/str0m_play.rs), release server:"
LEANRTC_BIN="$PWD/target/release/leanrtc" cargo test -p leanrtc --test str0m_play --offline --locked \
  -q ten_str0m_viewers_at_once -- --nocapture 2>&1 | grep -E 'server CPU|test result'
