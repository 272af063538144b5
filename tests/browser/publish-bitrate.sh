#!/usr/bin/env bash
# Measures what bitrate headless Chromium reaches when it publishes to a release build of
# leanrtc over WHIP, with the server's congestion feedback (transport-wide CC, the default)
# and without it (--test-no-congestion-feedback), at 640x360 and at 1280x720. Chromium's fake
# camera (30 fps test pattern) encodes cheaply; NOISE=1 also runs with a camera that plays a
# noisy 640x360 clip made by ffmpeg, whose encoder uses every bit it is allowed. A third case
# leaves transport-wide CC out of the browser's offer, so it is not negotiated at all.
# Not a test: it prints the publisher's getStats over time (targetBitrate = what the encoder
# is asked for, sent = bytesSent per interval, BWE = the candidate pair's
# availableOutgoingBitrate). Runs inside a private network namespace, as ./test.sh does.
# Run as root (or where `unshare -rn` works), after `./test.sh` or `(cd tests/browser && npm ci)`.
#   tests/browser/publish-bitrate.sh [SECONDS=20]
set -euo pipefail
cd "$(dirname "$0")/../.."
SECONDS_EACH=${1:-20}

if [ -z "${LEANRTC_IN_NS:-}" ]; then
  cargo build --release --bin leanrtc --locked
  [ -d tests/browser/node_modules/playwright-core ] || (cd tests/browser && npm ci --no-audit --no-fund)
  exec tests/netns.sh env LEANRTC_IN_NS=1 "$0" "$@"
fi

work=$(mktemp -d)
server=
cleanup() {
  for p in $(grep -ho '"pids":\[[0-9,]*' "$work"/*.err 2>/dev/null | grep -o '[0-9][0-9]*'); do
    kill -KILL -- "-$p" 2>/dev/null || true
  done
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# Prints a table of whip-publish.js's samples (every 2 s) and a summary line.
summarize() {
  node -e '
    const r = JSON.parse(require("fs").readFileSync(0, "utf8"));
    if (r.error) { console.log("  error: " + r.error); process.exit(1); }
    const kbps = (x) => (x === undefined || x === null ? "-" : Math.round(x / 1000));
    const s = r.samples;
    console.log("  answer (video): " + (r.feedback || []).join("  "));
    console.log("     t   target   sent    BWE  fps  size       limited by");
    let prev = { t: 0, bytesSent: 0, framesSent: 0 };
    const rows = [];
    for (const x of s) {
      if (x.t - prev.t < 1900 && x !== s[s.length - 1]) continue;
      const dt = (x.t - prev.t) / 1000;
      const sent = ((x.bytesSent - prev.bytesSent) * 8) / dt;
      const fps = (x.framesSent - prev.framesSent) / dt;
      rows.push({ t: x.t, sent });
      console.log(`  ${(x.t / 1000).toFixed(1).padStart(4)} ${String(kbps(x.targetBitrate)).padStart(8)} ${String(kbps(sent)).padStart(6)} ` +
        `${String(kbps(x.availableOutgoingBitrate)).padStart(6)} ${fps.toFixed(0).padStart(4)}  ` +
        `${(x.frameWidth + "x" + x.frameHeight).padEnd(10)} ${x.qualityLimitationReason}`);
      prev = x;
    }
    const last = s[s.length - 1];
    const half = s.find((x) => x.t >= last.t / 2);
    const late = ((last.bytesSent - half.bytesSent) * 8) / ((last.t - half.t) / 1000);
    const maxTarget = Math.max(...s.map((x) => x.targetBitrate || 0));
    console.log(`  summary: target ${kbps(last.targetBitrate)} kbps at the end (max ${kbps(maxTarget)}), ` +
      `sent ${kbps(late)} kbps over the second half, ${r.video.framesSent} frames, ` +
      `${r.video.frameWidth}x${r.video.frameHeight}, NACKs ${r.video.nackCount}, PLIs ${r.video.pliCount}`);
  '
}

run() { # run LABEL WIDTH HEIGHT [server flags...]
  local label=$1 width=$2 height=$3
  shift 3
  target/release/leanrtc --http 127.0.0.1:0 --udp 127.0.0.1:0 "$@" 2>"$work/server.log" &
  server=$!
  for _ in $(seq 100); do grep -q 'ready: open' "$work/server.log" && break; sleep 0.1; done
  local http
  http=$(grep -o 'http=[0-9.:]*' "$work/server.log" | head -1 | cut -d= -f2)
  [ -n "$http" ] || { cat "$work/server.log"; echo "leanrtc did not start" >&2; exit 1; }
  echo "-- $label, ${width}x${height}, ${SECONDS_EACH} s${*:+ (server: $*)}${LEANRTC_FAKE_VIDEO:+ (camera: noisy clip)}${LEANRTC_OFFER_NO_TWCC:+ (offer without transport-cc)}"
  (cd tests/browser && node whip-publish.js chromium "http://$http" cam "$SECONDS_EACH" vp8 "$width" "$height") \
    >"$work/out.json" 2>"$work/$label-$width.err" || { grep -v '^{"pids"' "$work/$label-$width.err" >&2; exit 1; }
  summarize <"$work/out.json"
  kill "$server"; wait "$server" 2>/dev/null || true
  server=
}

echo "leanrtc (release) and $(/usr/bin/chromium --version 2>/dev/null); $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
for size in "640 360" "1280 720"; do
  # shellcheck disable=SC2086
  run feedback $size
  # shellcheck disable=SC2086
  run no-feedback $size --test-no-congestion-feedback
done
# transport-cc not negotiated at all (the browser's offer without it): Chromium then has
# only the receiver reports to go by.
LEANRTC_OFFER_NO_TWCC=1 run not-negotiated 1280 720
unset LEANRTC_OFFER_NO_TWCC
if [ -n "${NOISE:-}" ]; then
  command -v ffmpeg >/dev/null || { echo "NOISE=1 needs ffmpeg (apt-get install -y ffmpeg)" >&2; exit 1; }
  ffmpeg -v error -f lavfi -i "testsrc2=size=640x360:rate=30,noise=alls=30:allf=t" -t 4 -pix_fmt yuv420p "$work/noise.y4m"
  export LEANRTC_FAKE_VIDEO="$work/noise.y4m"
  run feedback 640 360
  run no-feedback 640 360 --test-no-congestion-feedback
  LEANRTC_OFFER_NO_TWCC=1 run not-negotiated 640 360
fi
