#!/usr/bin/env bash
# Screen sharing, glass to glass: builds the release server, installs playwright-core (never a
# browser: Debian's chromium is used), prints the machine's state, then runs glass_to_glass.mjs
# with the arguments given (see loadtest/scripts/README.md). A benchmark: figures, no verdict.
#   loadtest/scripts/glass_to_glass.sh [--sender both|chromium|helper] [--runs 3] [--changes 60] ...
# TANDEM_BIN=path skips the server's build, HELPER_BIN=path the helper's (Tandem Helper).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
"$root/scripts/system-packages.sh"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
if [ -z "${TANDEM_BIN:-}" ]; then
    (cd "$root" && cargo build --release --locked -p tandem)
    TANDEM_BIN=$CARGO_TARGET_DIR/release/tandem
fi
if [ -z "${HELPER_BIN:-}" ]; then
    (cd "$root" && cargo build --release --locked -p tandem-helper --bin tandem-helper)
    HELPER_BIN=$CARGO_TARGET_DIR/release/tandem-helper
fi
[ -d "$here/node_modules/playwright-core" ] || (cd "$here" && npm ci --no-audit --no-fund)
echo "machine: nproc $(nproc); $(chromium --version 2>/dev/null)"
top -bn1 | head -5
echo "over 1 s: $(top -bn2 -d1 | grep '%Cpu' | tail -1)"
cd "$here"
exec node glass_to_glass.mjs --server "$TANDEM_BIN" --helper "$HELPER_BIN" "$@"
