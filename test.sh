#!/usr/bin/env bash
# Runs every test of leanrtc: formatting, lints, RFC vectors, interop with independent stacks,
# and real-browser tests. Network-using tests run inside a private network namespace, so
# nothing they do can leave this machine (see docs/TESTING.md).
set -euo pipefail
cd "$(dirname "$0")"

step() { printf '\n== %s\n' "$*"; }

# What the interop and browser tests run, as Debian packages. openssl: DTLS interop peer;
# chromium/firefox-esr: real browsers; tshark: captures; ffmpeg: ffprobe checks recordings;
# iproute2/util-linux: the test network namespace; python3-gst-1.0 & co.: GStreamer's
# webrtcbin publishes with WHIP (tests/gstreamer/); python3-venv: the aiortc venv below;
# nftables: drops a browser namespace's UDP (ICE-TCP tests); coturn: the TURN relay they use;
# redis-server: the cluster's stream directory (tests/cluster_redis.rs starts its own).
PACKAGES=(ca-certificates openssl iproute2 util-linux nftables coturn redis-server chromium firefox-esr ffmpeg tshark
  python3 python3-venv python3-gst-1.0 gir1.2-gst-plugins-bad-1.0 gstreamer1.0-plugins-base
  gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-nice gstreamer1.0-libav)

# Installs what is missing (as root), or stops at once with the command that would.
setup() {
  if ! command -v dpkg-query >/dev/null; then
    echo "not Debian: make sure these (or your system's equivalents) are installed: ${PACKAGES[*]} nodejs npm" >&2
    return
  fi
  local missing=() p
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  # Node (with npm) runs the browser drivers; some machines have it from NodeSource instead.
  command -v npm >/dev/null || missing+=(nodejs npm)
  [ ${#missing[@]} -eq 0 ] && return
  step "installing what the tests need: ${missing[*]}"
  if [ "$(id -u)" -eq 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends "${missing[@]}"
  else
    echo "missing packages; run this, then ./test.sh again:" >&2
    echo "  sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
}

step "system packages"
setup

step "format"
cargo fmt --all --check

step "lints"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "build (fetches crates; the tests themselves run offline)"
# What the tests run, no more: the benches are linted above and built by `cargo bench`.
cargo test --workspace --no-run --locked
cargo check --manifest-path fuzz/Cargo.toml --locked --quiet

if [ -f tests/browser/package.json ]; then
  step "browser drivers (playwright-core / puppeteer-core; browsers come from Debian)"
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
fi

if [ -f tests/aiortc/requirements.txt ]; then
  step "aiortc (PyPI), an independent WebRTC publisher, in a venv of its own"
  [ -x tests/aiortc/.venv/bin/python ] || python3 -m venv tests/aiortc/.venv
  tests/aiortc/.venv/bin/pip install --quiet --disable-pip-version-check -r tests/aiortc/requirements.txt
fi

step "tests, in a private network namespace (loopback + an unrouted veth)"
# With arguments (`./test.sh -p rtc stun`) they choose what runs; without, everything does.
everything=0
if [ $# -eq 0 ]; then everything=1; set -- --workspace; fi
tests/netns.sh cargo test --offline --locked "$@"

if [ $everything -eq 1 ]; then
  # The run above uses the default media threads (one per CPU); the SFU tests run again
  # with one, the other shape users may choose (docs/DESIGN.md, "The engine, sharded").
  step "the SFU tests again with one media thread (LEANRTC_THREADS=1)"
  LEANRTC_THREADS=1 tests/netns.sh cargo test --offline --locked -p leanrtc \
    --test sfu_fanout --test sfu_str0m_live --test sfu_loss --test sfu_reconnect --test str0m_play \
    --test ice_tcp
fi
