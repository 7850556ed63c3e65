#!/usr/bin/env bash
# Runs every check and test of Tandem. On a fresh Debian machine it first installs the system
# packages the build and the tests need.
set -euo pipefail
cd "$(dirname "$0")"
scripts/system-packages.sh

echo "== format"
cargo fmt --all -- --check
echo "== lint"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== tests"
cargo test --workspace --locked
