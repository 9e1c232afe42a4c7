#!/usr/bin/env bash
# The quick start: builds tether, starts a local AWS endpoint (moto, installed into a
# virtual environment under target/), and runs tether's main job on this example:
# validate, plan, apply (which then runs the jobs), plan again (no changes), show the
# instance's ssh line, run one job alone as JSON, pull the team's secrets from Parameter
# Store, audit, rotate the admin's key, then destroy. Nothing leaves this machine: every request goes to the loopback endpoint, with
# dummy credentials, and HOME is a temporary directory, so the (fake) secrets land there
# and your own AWS configuration is never read.
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
home="$(mktemp -d)"
trap 'kill "$moto_pid" 2>/dev/null; rm -f "$log"; rm -rf "$home"' EXIT
export HOME="$home" AWS_CONFIG_FILE="$home/.aws/config" AWS_SHARED_CREDENTIALS_FILE="$home/.aws/credentials"
cd "$here"

if [ -t 2 ] && [ -z "${NO_COLOR:-}" ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold='' plain=''; fi
step() { printf '\n%s$ %s%s\n' "$bold" "$*" "$plain" >&2; "$@"; }
step "$tether" validate
step "$tether" plan
step "$tether" apply --auto-approve
step "$tether" plan --detailed-exitcode
step "$tether" show
step cat "$HOME/.ssh/config"
step "$tether" run word-count --json
# apply kept the generated secrets in the account's Parameter Store; fetch local copies.
step "$tether" secrets pull
step ls -l "$HOME/.tether/secrets/quickstart" "$HOME/.ssh"
# The new admin has no MFA device yet, and moto cannot give the root user one, so the audit
# reports those two failures and exits 3.
step "$tether" audit || [ $? -eq 3 ]
step "$tether" rotate-key admin
step "$tether" destroy --auto-approve
