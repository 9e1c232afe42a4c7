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
moto_server="$(bash tests/support/install-moto.sh)"

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
log="$(mktemp)"
MOTO_IAM_LOAD_MANAGED_POLICIES=true "$moto_server" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
moto_pid=$!
trap 'kill "$moto_pid" 2>/dev/null; rm -f "$log"' EXIT
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.2
done

export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
export AWS_ACCESS_KEY_ID=quickstart AWS_SECRET_ACCESS_KEY=quickstart
export AWS_EC2_METADATA_DISABLED=true
cd "$here"

step() { printf '\n\033[1m$ %s\033[0m\n' "$*" >&2; "$@"; }
step "$tether" validate
step "$tether" plan
step "$tether" apply --auto-approve
step "$tether" plan --detailed-exitcode
step "$tether" destroy --auto-approve
