#!/usr/bin/env bash
# Builds tether's wheels into target/wheels: manylinux2014 (glibc 2.17) wheels holding the
# `tether` binary alone (maturin, `bindings = "bin"`), linked by zig against glibc 2.17 with
# the host's Rust target only. maturin, ziglang and cargo-zigbuild are installed into
# target/wheel-venv (scripts/wheel-requirements.txt); nothing else is needed but Rust.
#
#   scripts/build-wheel.sh             # x86_64, release: the wheel to install
#   scripts/build-wheel.sh --aarch64   # also an aarch64 wheel, where rustup can add its target
#   PROFILE=dev scripts/build-wheel.sh # a quicker unoptimised build (what CI checks)
#
# Prints the path of each wheel built.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/wheel-venv
if ! "$venv/bin/python" -c 'import maturin' 2>/dev/null \
    || ! cmp -s scripts/wheel-requirements.txt "$venv/requirements.txt"; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r scripts/wheel-requirements.txt
    cp scripts/wheel-requirements.txt "$venv/requirements.txt"
fi
export PATH="$PWD/$venv/bin:$PATH"

targets=(x86_64-unknown-linux-gnu)
if [ "${1:-}" = "--aarch64" ]; then
    if rustup target add aarch64-unknown-linux-gnu >/dev/null 2>&1; then
        targets+=(aarch64-unknown-linux-gnu)
    else
        echo "note: rustup cannot add aarch64-unknown-linux-gnu here: x86_64 only" >&2
    fi
fi

profile=(--release)
if [ "${PROFILE:-release}" = "dev" ]; then
    profile=(--profile dev)
fi

for target in "${targets[@]}"; do
    maturin build "${profile[@]}" --locked --zig --target "$target" \
        --compatibility manylinux2014 --out target/wheels >&2
done
ls -1t target/wheels/tether_lab-*.whl | head -n "${#targets[@]}"
