#!/usr/bin/env bash
# Installs moto's standalone server into a virtual environment (default: target/moto-venv)
# and prints the path of its `moto_server`. Safe to run concurrently: the first caller
# installs, the others wait on the lock and reuse the result.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="${TETHER_MOTO_VENV:-$root/target/moto-venv}"
mkdir -p "$(dirname "$venv")"
exec 9>"$venv.lock"
flock 9
if [ ! -x "$venv/bin/moto_server" ]; then
  echo "installing moto[server] into $venv ..." >&2
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]>=5.1,<6" >&2
fi
echo "$venv/bin/moto_server"
