#!/usr/bin/env bash
# Checks a wheel as a data scientist would meet it: installed with pip into a new virtual
# environment, with no Rust on the PATH, its `tether` prints its version, validates the
# bundled quick start and plans it against a local endpoint (moto on loopback); and its
# binary asks for no glibc symbol newer than 2.17 (objdump -T). Prints the wheel's and the
# binary's sizes and how long `pip install` took. Run by .ci/run.
#
#   scripts/check-wheel.sh [WHEEL]     # default: the newest x86_64 wheel in target/wheels
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

wheel="${1:-$(ls -1t target/wheels/tether_lab-*x86_64.whl | head -n 1)}"
scratch="$(mktemp -d)"
log="$scratch/moto.log"
source tests/support/moto.sh
trap '[ -n "$moto_pid" ] && kill "$moto_pid" 2>/dev/null; rm -rf "$scratch"' EXIT

# A PATH without ~/.cargo/bin: what pip installs must need no Rust.
plain_path=/usr/local/bin:/usr/bin:/bin
python="$(command -v python3)"
env -i PATH="$plain_path" HOME="$scratch" "$python" -m venv "$scratch/venv"
start=$(date +%s.%N)
env -i PATH="$plain_path" HOME="$scratch" "$scratch/venv/bin/pip" install --quiet \
    --disable-pip-version-check --no-index "$wheel"
end=$(date +%s.%N)
tether="$scratch/venv/bin/tether"
if env -i PATH="$scratch/venv/bin:$plain_path" sh -c 'command -v cargo rustc' >/dev/null; then
    echo "error: Rust is on the PATH the check runs with" >&2
    exit 1
fi

run() { env -i PATH="$scratch/venv/bin:$plain_path" HOME="$scratch" "$@"; }
version="$(run tether --version)"
case "$version" in
    "tether "*) ;;
    *) echo "error: \`tether --version\` printed: $version" >&2; exit 1 ;;
esac
run tether validate -f "$root/examples/quickstart/tether.yaml" >/dev/null

# The newest glibc version any dynamic symbol asks for.
newest="$(objdump -T "$tether" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -t. -k1,1n -k2,2n -k3,3n | tail -n 1)"
if [ "$(printf '%s\n2.17\n' "$newest" | sort -t. -k1,1n -k2,2n -k3,3n | tail -n 1)" != "2.17" ]; then
    echo "error: the wheel's binary needs glibc $newest, newer than 2.17" >&2
    exit 1
fi

# An empty account: the plan creates the whole lab (exit 2 with --detailed-exitcode).
start_moto "$log"
set +e
run AWS_ENDPOINT_URL="$AWS_ENDPOINT_URL" AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local \
    AWS_EC2_METADATA_DISABLED=true AWS_REGION=us-east-1 \
    tether plan -f "$root/examples/quickstart/tether.yaml" --detailed-exitcode >/dev/null 2>"$scratch/plan.err"
code=$?
set -e
if [ "$code" -ne 2 ] || ! grep -q "to create" "$scratch/plan.err"; then
    echo "error: the plan exited $code:" >&2
    cat "$scratch/plan.err" >&2
    exit 1
fi

printf 'wheel   %s: %s bytes\n' "$(basename "$wheel")" "$(stat -c %s "$wheel")"
printf 'binary  %s bytes, newest glibc symbol %s\n' "$(stat -c %s "$tether")" "$newest"
printf 'pip install: %s s\n' "$(python3 -c "print(round($end - $start, 1))")"
echo "$version from the wheel validates and plans the quick start; ok"
