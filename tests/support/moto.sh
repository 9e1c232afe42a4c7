# Sourced by the example and bench scripts (the Rust tests have their own harness).
# `start_moto LOG` starts moto's standalone server on a free loopback port, waits until it
# answers, sets `moto_pid`, and exports AWS_ENDPOINT_URL, dummy credentials and
# AWS_EC2_METADATA_DISABLED, so nothing but loopback is ever contacted. The caller kills
# "$moto_pid" in its own EXIT trap.
moto_pid=""
start_moto() {
  local log="$1" server port
  server="$(bash "$(dirname "${BASH_SOURCE[0]}")/install-moto.sh")"
  port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  MOTO_IAM_LOAD_MANAGED_POLICIES=true "$server" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
  moto_pid=$!
  for _ in $(seq 1 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.2
  done
  export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
  export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local
  export AWS_EC2_METADATA_DISABLED=true
}
