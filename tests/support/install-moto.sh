#!/usr/bin/env bash
# Installs moto's standalone server into a virtual environment (default: target/moto-venv)
# and prints the path of its `moto_server`. The same environment has jsonschema and PyYAML:
# the independent validator tests/schema.rs checks the spec's JSON Schema with. Safe to run
# concurrently: the first caller installs, the others wait on the lock and reuse the result.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="${TETHER_MOTO_VENV:-$root/target/moto-venv}"
mkdir -p "$(dirname "$venv")"
exec 9>"$venv.lock"
flock 9
if [ ! -x "$venv/bin/moto_server" ] || ! "$venv/bin/python" -c "import jsonschema, yaml" 2>/dev/null; then
  echo "installing moto[server] into $venv ..." >&2
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]>=5.1,<6" "jsonschema>=4.18,<5" "PyYAML>=6,<7" >&2
fi
echo "$venv/bin/moto_server"
