#!/usr/bin/env bash
# Installs the Python packages the tests need (tests/interop: aiortc from PyPI, as pinned in
# tests/interop/requirements.txt) into their own virtual environment, target/interop-venv,
# never into the system's Python. Wheels only: nothing is compiled, so no -dev packages are
# needed (system-packages.sh brings python3-venv). Does nothing when the environment already
# holds exactly these pins. test.sh calls it after system-packages.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/interop-venv
requirements=tests/interop/requirements.txt
if cmp -s "$requirements" "$venv/installed-requirements.txt"; then
    exit 0
fi
echo "installing the Python packages of tests/interop into $venv"
rm -rf "$venv"
# Debian's Python 3, whatever else is first on PATH.
/usr/bin/python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check --no-input \
    --only-binary=:all: --requirement "$requirements"
cp "$requirements" "$venv/installed-requirements.txt"
