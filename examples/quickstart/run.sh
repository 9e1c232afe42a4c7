#!/usr/bin/env bash
# The quick start: builds tether, starts a local AWS endpoint (moto, installed into a
# virtual environment under target/), and runs tether's main job on this example:
# plan, apply, plan again (no changes), then destroy. Nothing leaves this machine: every
# request goes to the loopback endpoint, with dummy credentials.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

cargo build --quiet --bin tether
tether="$root/target/debug/tether"
log="$(mktemp)"
# shellcheck source=../../tests/support/moto.sh
source tests/support/moto.sh
trap 'kill "$moto_pid" 2>/dev/null; rm -f "$log"' EXIT
start_moto "$log"
cd "$here"

step() { printf '\n\033[1m$ %s\033[0m\n' "$*" >&2; "$@"; }
step "$tether" validate
step "$tether" plan
step "$tether" apply --auto-approve
step "$tether" plan --detailed-exitcode
step "$tether" destroy --auto-approve
