#!/usr/bin/env bash
# Measures a release build of leanrtc against headless Chromium, inside a private network
# namespace (as ./test.sh runs the tests): the time from the WHEP POST to the first decoded
# frame (N plays), and the server's CPU per viewer (K Chromium viewers, then 10 str0m
# viewers, against 0 viewers). Not a test: it prints figures. Run as root (or where
# `unshare -rn` works), after `./test.sh` or `(cd tests/browser && npm ci)`.
#   tests/browser/first-frame.sh [N=10] [K=10] [W=10]
# Time to first frame only, main's build against this one, a video-only IVF, 7 plays each:
#   LEANRTC_BINS="/tmp/main-leanrtc target/release/leanrtc" MEDIA_DIR=/tmp/ivf-only \
#     STREAM=sample-vp8-640x360-30fps-10s tests/browser/first-frame.sh 7 0
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-10} K=${2:-10} W=${3:-10}

if [ -z "${LEANRTC_IN_NS:-}" ]; then
  cargo build --release --bin leanrtc --locked
  cargo test -p leanrtc --test str0m_play --locked --no-run
  [ -d tests/browser/node_modules/playwright-core ] || (cd tests/browser && npm ci --no-audit --no-fund)
  exec tests/netns.sh env LEANRTC_IN_NS=1 "$0" "$@"
fi

# LEANRTC_BINS: servers to measure one after another in this run (e.g. main's build, then
# this one), each with its own browser; MEDIA_DIR/STREAM: what they play (default: the
# built-in sample). With K = 0 only the first-frame times are measured.
read -r -a bins <<<"${LEANRTC_BINS:-target/release/leanrtc}"
stream=${STREAM:-sample}
log=$(mktemp) errlog=$(mktemp)
server=
cleanup() {
  # The browser runs in a process group of its own; first-frame.js reports its pid.
  for p in $(grep -o '"pids":\[[0-9,]*' "$errlog" | grep -o '[0-9][0-9]*'); do kill -KILL -- "-$p" 2>/dev/null || true; done
  if [ -n "$server" ]; then kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; fi
  server=
  : >"$errlog"
}
trap 'cleanup; rm -f "$log" "$errlog"' EXIT
for bin in "${bins[@]}"; do
  : >"$log"
  "$bin" --http 127.0.0.1:0 --udp 127.0.0.1:0 ${MEDIA_DIR:+--media-dir "$MEDIA_DIR"} 2>"$log" &
  server=$!
  for _ in $(seq 100); do grep -q 'ready: open' "$log" && break; sleep 0.1; done
  http=$(grep -o 'http=[0-9.:]*' "$log" | head -1 | cut -d= -f2)
  [ -n "$http" ] || { cat "$log"; echo "$bin did not start" >&2; exit 1; }
  echo "== $bin: leanrtc $("$bin" --version 2>/dev/null | tail -1) (pid $server) on http://$http, stream $stream; $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
  (cd tests/browser && node first-frame.js "http://$http" "$server" "$N" "$K" "$W" "$stream") 2>"$errlog" ||
    { grep -v '^{"pids"' "$errlog" >&2; exit 1; }
  cleanup
done
[ "$K" -gt 0 ] || exit 0

echo "-- 10 str0m viewers in process (crates/server/tests/str0m_play.rs), release server:"
LEANRTC_BIN="$PWD/target/release/leanrtc" cargo test -p leanrtc --test str0m_play --offline --locked \
  -q ten_str0m_viewers_at_once -- --nocapture 2>&1 | grep -E 'server CPU|test result'
