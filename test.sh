#!/usr/bin/env bash
# Runs every check and test of Tandem. On a fresh Debian machine it first installs the system
# packages the build and the tests need.
set -euo pipefail
cd "$(dirname "$0")"
scripts/system-packages.sh
# The browser tests' driver (playwright-core only: it uses Debian's chromium, downloads none).
(cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error)

echo "== format"
cargo fmt --all -- --check
echo "== lint"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== tests"
cargo test --workspace --locked
