#!/usr/bin/env bash
# Runs every test of leanrtc: formatting, lints, RFC vectors, interop with independent stacks,
# and real-browser tests. Network-using tests run inside a private network namespace, so
# nothing they do can leave this machine (see docs/TESTING.md).
set -euo pipefail
cd "$(dirname "$0")"

step() { printf '\n== %s\n' "$*"; }

step "format"
cargo fmt --all --check

step "lints"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "build (fetches crates; the tests themselves run offline)"
cargo build --workspace --all-targets --locked
cargo build --release --bin leanrtc --locked
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
tests/netns.sh cargo test --workspace --offline --locked "$@"
