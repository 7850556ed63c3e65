#!/usr/bin/env bash
# Runs every check and test of Tandem. On a fresh Debian machine it first installs the system
# packages the build and the tests need.
set -euo pipefail
cd "$(dirname "$0")"
scripts/system-packages.sh
scripts/python-packages.sh # aiortc for tests/server/interop.rs, in its own venv (target/interop-venv)
# The browser tests' driver (playwright-core only: it uses Debian's chromium, downloads none).
(cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error)

# A run of this script builds from scratch on a CI machine, where incremental state would be
# 2.2 GB of disk that nothing reads again (a CI run once failed with its linker out of disk).
export CARGO_INCREMENTAL=0
# The lint and the fuzz check build metadata the test build cannot reuse: they get their own
# target directory, emptied on CI before the tests build (1.9 GB).
check_target="${CARGO_TARGET_DIR:-$PWD/target}/check"
# The checkout's disk (where the build goes) and /tmp, before the build and however the run
# ends: a run that meets a full disk then says so (a linker killed by SIGBUS does not).
disk() { df -h . /tmp | sed "s/^/disk $1: /" || true; }
disk "before the build"
trap 'disk "at the end"' EXIT

echo "== format"
cargo fmt --all -- --check
cargo fmt --manifest-path fuzz/Cargo.toml -- --check
echo "== lint"
CARGO_TARGET_DIR="$check_target" cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== import circles"
# No two modules of one parent import each other (docs/architecture.md, Crates).
scripts/import-circles src actors/src media/src helper/src
echo "== fuzz targets build"
# Checked, not run (running them takes a nightly toolchain and time: fuzz/README.md), so an
# API change cannot leave them broken unnoticed. Shares the lint's target directory.
CARGO_TARGET_DIR="$check_target" cargo check --manifest-path fuzz/Cargo.toml --locked --bins
if [ -n "${CI:-}" ]; then rm -rf "$check_target"; fi
echo "== tests"
# Among them tests/server/metrics_lint.rs: `promtool check metrics` on a running server's
# /metrics after HTTP, a WebSocket session, a WebRTC call and SIP (fails if promtool is missing).
cargo test --workspace --locked
