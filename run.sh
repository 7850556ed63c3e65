#!/usr/bin/env bash
# Builds and starts the Tandem server with the built-in defaults: http://127.0.0.1:8080, data
# (SQLite file and signing key) in ./data. On a fresh Debian machine it first installs the
# system packages the build needs, and on first start it creates an admin account and prints
# its password. Any argument is passed to `tandem serve` (for example --listen 0.0.0.0:8080).
set -euo pipefail
cd "$(dirname "$0")"
scripts/system-packages.sh

# The server, and Tandem Helper (the program the customer runs: target/release/tandem-helper).
cargo build --release --locked -p tandem -p tandem-helper
bin=target/release/tandem

if [ -z "$("$bin" user list)" ]; then
    password=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
    echo "$password" | "$bin" user add --username admin --role admin --email admin@localhost \
        --display-name Administrator
    echo "First start: admin account 'admin' created with password: $password"
fi
exec "$bin" serve "$@"
