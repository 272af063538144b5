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
# An entry `aiortc` in LEANRTC_BINS is tests/aiortc/whep_server.py (aiortc's own stack, the
# same IVF sent unchanged) measured the same way; the run then ends with a table of the
# medians and each leanrtc's time as a share of aiortc's. Without the build (bins given):
#   LEANRTC_BINS="/tmp/main-leanrtc /tmp/new-leanrtc aiortc" MEDIA_DIR=/tmp/ivf-only \
#     STREAM=sample-vp8-640x360-30fps-10s tests/netns.sh env LEANRTC_IN_NS=1 tests/browser/first-frame.sh 7 0
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
# this one), each with its own browser; `aiortc` is tests/aiortc/whep_server.py run by
# AIORTC_PYTHON (it needs MEDIA_DIR with STREAM.ivf). MEDIA_DIR/STREAM: what they play
# (default: the built-in sample). With K = 0 only the first-frame times are measured.
read -r -a bins <<<"${LEANRTC_BINS:-target/release/leanrtc}"
stream=${STREAM:-sample}
aiortc_py=${AIORTC_PYTHON:-tests/aiortc/.venv/bin/python}
log=$(mktemp) errlog=$(mktemp) results=$(mktemp -d)
server=
cleanup() {
  # The browser runs in a process group of its own; first-frame.js reports its pid.
  for p in $(grep -o '"pids":\[[0-9,]*' "$errlog" | grep -o '[0-9][0-9]*'); do kill -KILL -- "-$p" 2>/dev/null || true; done
  if [ -n "$server" ]; then kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; fi
  server=
  : >"$errlog"
}
trap 'cleanup; rm -rf "$log" "$errlog" "$results"' EXIT
i=0
for bin in "${bins[@]}"; do
  : >"$log"
  i=$((i + 1))
  if [ "$bin" = aiortc ]; then
    # Its one ICE candidate is the HTTP address, 127.0.0.1, as leanrtc's --udp below.
    cmd=("$aiortc_py" tests/aiortc/whep_server.py)
    # shellcheck disable=SC2086 # AIORTC_ARGS: more options, e.g. --decode (re-encode)
    "${cmd[@]}" --http 127.0.0.1:0 ${MEDIA_DIR:+--media-dir "$MEDIA_DIR"} ${AIORTC_ARGS:-} 2>"$log" &
  else
    cmd=("$bin")
    "$bin" --http 127.0.0.1:0 --udp 127.0.0.1:0 ${MEDIA_DIR:+--media-dir "$MEDIA_DIR"} 2>"$log" &
  fi
  server=$!
  for _ in $(seq 100); do grep -q 'ready: open' "$log" && break; sleep 0.1; done
  http=$(grep -o 'http=[0-9.:]*' "$log" | head -1 | cut -d= -f2)
  [ -n "$http" ] || { cat "$log"; echo "$bin did not start" >&2; exit 1; }
  version=$("${cmd[@]}" --version 2>/dev/null | tail -1)
  echo "== $bin: $version (pid $server) on http://$http, stream $stream; $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
  (cd tests/browser && node first-frame.js "http://$http" "$server" "$N" "$K" "$W" "$stream") 2>"$errlog" |
    tee "$results/$i" || { grep -v '^{"pids"' "$errlog" >&2; exit 1; }
  printf '%s\n' "$bin" >"$results/$i.name"
  cleanup
done
# The medians side by side; with an aiortc entry, each other server's times as a share of
# aiortc's (its speed-up in brackets).
if [ "${#bins[@]}" -gt 1 ]; then
  node -e '
    const fs = require("fs");
    const dir = process.argv[1], n = Number(process.argv[2]);
    const rows = [];
    for (let i = 1; i <= n; i++) {
      const json = fs.readFileSync(`${dir}/${i}`, "utf8").trim().split("\n").pop();
      rows.push({ name: fs.readFileSync(`${dir}/${i}.name`, "utf8").trim(), r: JSON.parse(json) });
    }
    const cols = [["presented", "firstPresentedMs"], ["track", "firstFrameTrackMs"], ["getStats", "firstFrameMs"], ["connected", "connectedMs"]];
    const w = Math.max(...rows.map((x) => x.name.length + 9), 24);
    const med = (r, k) => (r[k] ? r[k].median : null);
    const cell = (v) => (v === null ? "-" : v.toFixed(1)).padStart(14);
    console.log(`${"median ms, POST → …".padEnd(w)} ${cols.map(([c]) => c.padStart(14)).join(" ")}`);
    for (const { name, r } of rows) console.log(`${name.padEnd(w)} ${cols.map(([, k]) => cell(med(r, k))).join(" ")}`);
    const base = rows.find((x) => x.name === "aiortc");
    if (base) {
      for (const { name, r } of rows.filter((x) => x !== base)) {
        const ratio = cols.map(([, k]) => {
          const a = med(r, k), b = med(base.r, k);
          return (a === null || b === null ? "-" : `${(a / b).toFixed(2)} (${(b / a).toFixed(1)}×)`).padStart(14);
        });
        console.log(`${(name + " / aiortc").padEnd(w)} ${ratio.join(" ")}`);
      }
    }' "$results" "${#bins[@]}"
fi
[ "$K" -gt 0 ] || exit 0

echo "-- 10 str0m viewers in process (crates/server/tests/str0m_play.rs), release server:"
LEANRTC_BIN="$PWD/target/release/leanrtc" cargo test -p leanrtc --test str0m_play --offline --locked \
  -q ten_str0m_viewers_at_once -- --nocapture 2>&1 | grep -E 'server CPU|test result'
