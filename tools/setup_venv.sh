#!/usr/bin/env bash
# `make setup`: .venv at the repository root with d2tf's dependencies (tools/install_dependencies.sh), then d2tf
# itself, editable, which puts the `d2tf` command in .venv/bin. Idempotent. Each step has a stamp of its own inputs:
# the dependencies take minutes to install, and how d2tf itself is installed must be able to change without that.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.venv"
bash "$root/tools/install_dependencies.sh"

stamp="$venv/.d2tf-project"
want=$(cat "$root/pyproject.toml" "$0" | sha256sum | cut -d' ' -f1)
if [ -x "$venv/bin/d2tf" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    exit 0
fi
echo "[setup] installing d2tf (editable: the checkout's own files, the d2tf command)" >&2
# --no-build-isolation: the venv's setuptools (requirements.txt) builds it, so nothing is downloaded.
"$venv/bin/uv" pip install -q --python "$venv/bin/python" --no-deps --no-build-isolation -e "$root"
echo "$want" > "$stamp"
