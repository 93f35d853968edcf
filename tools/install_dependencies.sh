#!/usr/bin/env bash
# Creates .venv at the repository root with everything d2tf needs. Idempotent: a complete venv is left alone
# (the stamp file records which requirements it was built from).
#
# detectron2 is not on PyPI under its own name. PyPI's `pb1-detectron2==0.6` is the unmodified 0.6 source tree
# without the C++ sources, so `pip install` of it fails while compiling. d2tf never needs the C++ ops (R-CNN
# inference in detectron2 does not call them), so we install the pure-Python package as is and add a stand-in
# `detectron2._C` that raises if anything ever calls into it.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.venv"
stamp="$venv/.d2tf-installed"
want=$(cat "$root/requirements.txt" "$0" | sha256sum | cut -d' ' -f1)

# tests/test_netron.py renders `make inspect`'s page in Debian's chromium, with faketime moving the browser's clock.
# Only root can install them (then even beside a complete venv); for anyone else that test skips, naming the tool.
missing=()
for tool in chromium faketime; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "[setup] installing ${missing[*]} (apt-get)" >&2
    apt_log=$(mktemp)
    # apt-get's progress is hundreds of lines: shown only if it fails.
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; } \
        >"$apt_log" 2>&1; then
        cat "$apt_log" >&2
        exit 1
    fi
    rm -f "$apt_log"
fi

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    exit 0
fi

# torch 2.14.1 / torchvision 0.29.1 lie on this machine's disk as wheels for CPython 3.11 only.
python=${PYTHON:-python3.11}
command -v "$python" >/dev/null || python=python3
"$python" -c 'import sys; assert sys.version_info[:2] == (3, 11), "d2tf needs Python 3.11 (torch wheels)"'

echo "[setup] creating $venv" >&2
rm -f "$stamp"
"$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)
"${pip[@]}" install "pip<26.2" "uv==0.13.9"

# uv unpacks wheels in parallel: torch's CUDA wheel set and TensorFlow (5 GB) installed in about 1 min against
# pip's 3. uv does not read pip's configuration, so the wheel locations and constraints pip is set up with here
# are passed on.
# --compile-bytecode: pip writes the .pyc files at install and uv does not, and where PYTHONDONTWRITEBYTECODE is
# set (this machine) every process would compile torch, TensorFlow and detectron2 again (a build 40% slower).
uv=("$venv/bin/uv" pip install -q --compile-bytecode --python "$venv/bin/python")
for links in ${PIP_FIND_LINKS:-$("${pip[@]}" config get global.find-links 2>/dev/null || true)}; do
    uv+=(--find-links "$links")
done
constraint=${PIP_CONSTRAINT:-$("${pip[@]}" config get global.constraint 2>/dev/null || true)}
[ -n "$constraint" ] && uv+=(--constraint "$constraint")

echo "[setup] installing torch (a minute or two on a fresh machine)" >&2
"${uv[@]}" $(grep -E '^(torch|torchvision)==' "$root/requirements.txt")
echo "[setup] installing requirements.txt" >&2
"${uv[@]}" -r "$root/requirements.txt"

echo "[setup] installing detectron2 0.6 (pure-Python part of pb1-detectron2)" >&2
site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# --no-build-isolation: the sdist's setup.py imports torch just to report its metadata.
"${pip[@]}" download --no-deps --no-build-isolation pb1-detectron2==0.6 -d "$work"
tar -xzf "$work"/pb1-detectron2-0.6.tar.gz -C "$work"
rm -rf "$site/detectron2"
cp -r "$work/pb1-detectron2-0.6/detectron2" "$site/detectron2"
cat > "$site/detectron2/_C.py" <<'EOF'
"""Stand-in for detectron2's compiled extension, which PyPI's source tree cannot build.

R-CNN inference never calls it; anything that does (deformable conv, rotated boxes, ...) fails loudly here.
"""


def __getattr__(name):
    raise ImportError(f"detectron2._C.{name} is unavailable: d2tf installs detectron2 without its C++ ops")
EOF
"$venv/bin/python" -m compileall -q "$site/detectron2" >/dev/null  # as installed packages are, see above
"$venv/bin/python" -c 'import detectron2.modeling, detectron2.model_zoo; print("[setup] detectron2", detectron2.__version__)' >&2
"${pip[@]}" check
# A wheel unpacked short (seen once: a truncated TensorFlow in uv's cache) installs without complaint and fails
# only at import, in every TensorFlow process of a conversion; say so here, before the stamp is written.
TF_CPP_MIN_LOG_LEVEL=3 "$venv/bin/python" -c 'import tensorflow' 2>/dev/null || {
    echo "[setup] error: tensorflow does not import; if uv's cache is damaged, run: $venv/bin/uv cache clean tensorflow-cpu" >&2
    exit 1
}

echo "$want" > "$stamp"
echo "[setup] done" >&2
