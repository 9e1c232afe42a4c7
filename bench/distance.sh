#!/usr/bin/env bash
# Benchmark: tether at AWS's distance. A loopback proxy (bench/delay_proxy.py) hands every
# answer back DELAY ms late, standing for an endpoint that far away; the same runs go
# through it at 0 ms and at DELAY ms:
# - a no-change `tether plan` of a spec with BUCKETS buckets (API calls counted in moto's
#   request log), and
# - `builtin: byte_count` over OBJECTS objects of 2 KiB, beside `aws s3 sync` of the same
#   prefix (awscli from PyPI, in the bench's own virtual environment) through the same
#   proxy, in the same script run.
# Prints the median wall time of RUNS runs of each and the far/near ratios. Loopback only.
#
#   bench/distance.sh                               # 200 buckets, 1000 objects, 40 ms, 5 runs
#   BUCKETS=50 OBJECTS=200 DELAY=20 RUNS=3 bench/distance.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
buckets="${BUCKETS:-200}"
objects="${OBJECTS:-1000}"
delay="${DELAY:-40}"
runs="${RUNS:-5}"

cargo build --quiet --release --bin tether
tether="$root/target/release/tether"
venv="$root/target/bench-venv"
if [ ! -x "$venv/bin/aws" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet awscli
fi
work="$(mktemp -d)"
# shellcheck source=../tests/support/moto.sh
source tests/support/moto.sh
pids=()
trap 'kill "$moto_pid" "${pids[@]}" 2>/dev/null; rm -rf "$work"' EXIT
start_moto "$work/moto.log"
moto_port="${AWS_ENDPOINT_URL##*:}"
export NO_COLOR=1 AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 HOME="$work"
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
near_port="$(free_port)"
far_port="$(free_port)"
python3 bench/delay_proxy.py "$near_port" "$moto_port" 0 & pids+=($!)
python3 bench/delay_proxy.py "$far_port" "$moto_port" "$delay" & pids+=($!)
sleep 1
direct="$AWS_ENDPOINT_URL"

{
  echo "project: bench"
  echo "region: us-east-1"
  echo "buckets:"
  echo "  bench-data: {}"
  for i in $(seq -w 1 "$buckets"); do
    if (( 10#$i % 2 )); then
      echo "  bench-bucket-$i: {public_read: true, tags: {team: ds}}"
    else
      echo "  bench-bucket-$i: {tags: {team: ml}}"
    fi
  done
  echo "jobs:"
  echo "  bytes:"
  echo "    inputs: s3://bench-data/docs/"
  echo "    builtin: byte_count"
} >"$work/tether.yaml"
cd "$work"
"$tether" apply --auto-approve --no-jobs --parallelism 20 >/dev/null 2>&1
mkdir -p docs
python3 - "$objects" <<'PY'
import random, sys
random.seed(7)
for i in range(int(sys.argv[1])):
    with open(f"docs/{i:05}.txt", "w") as f:
        f.write("".join(random.choice("abcdefgh \n") for _ in range(2048)))
PY
"$venv/bin/aws" --endpoint-url "$direct" s3 sync --quiet docs s3://bench-data/docs/

# median WALL_TIMES...
median() { printf '%s\n' "$@" | sort -n | sed -n "$(( ($# + 1) / 2 ))p"; }
# timed CMD...: the wall time of one run, in seconds.
timed() {
  local start end
  start=$(date +%s.%N)
  "$@" >/dev/null 2>&1
  end=$(date +%s.%N)
  python3 -c "print(f'{$end - $start:.3f}')"
}
calls() { grep -cE 'HTTP/1\.1.* [0-9]{3} ' moto.log || true; }

declare -A result
for side in near far; do
  port="$near_port"
  [ "$side" = far ] && port="$far_port"
  export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
  plans=() counts=() syncs=()
  for _ in $(seq 1 "$runs"); do
    before=$(calls)
    plans+=("$(timed "$tether" plan --detailed-exitcode)")
    result[plan_calls]=$(( $(calls) - before ))
    counts+=("$(timed "$tether" run bytes)")
    rm -rf synced
    syncs+=("$(timed "$venv/bin/aws" --endpoint-url "$AWS_ENDPOINT_URL" s3 sync --quiet s3://bench-data/docs/ synced)")
  done
  result[${side}_plan]=$(median "${plans[@]}")
  result[${side}_count]=$(median "${counts[@]}")
  result[${side}_sync]=$(median "${syncs[@]}")
  echo "$side: plan ${plans[*]} | byte_count ${counts[*]} | aws s3 sync ${syncs[*]}"
done
ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }

# Where one plan's calls go: by call, through a relay that names each (bench/call_census.py).
census_port="$(free_port)"
python3 "$root/bench/call_census.py" "$census_port" "$moto_port" "$work/census.txt" & census_pid=$!
pids+=("$census_pid")
sleep 1
AWS_ENDPOINT_URL="http://127.0.0.1:$census_port" "$tether" plan --detailed-exitcode >/dev/null 2>&1
kill -TERM "$census_pid"
wait "$census_pid" 2>/dev/null || true
echo
echo "calls of one no-change plan, by call:"
sed 's/^/  /' "$work/census.txt"
census_total=$(awk -F'\t' '{n += $1} END {print n}' "$work/census.txt")
census_s3=$(awk -F'\t' '$2 ~ /^S3 / || $2 == "GetResources" {n += $1} END {print n}' "$work/census.txt")
per_bucket() { python3 -c "print(f'{$1 / $buckets:.3f}')"; }
echo "per bucket: $(per_bucket "$census_total") in all, $(per_bucket "$census_s3") of them S3 and the tag index"

echo
echo "buckets=$buckets objects=$objects delay_ms=$delay runs=$runs api_calls_per_plan=${result[plan_calls]}"
printf '%-28s %10s %10s %8s\n' "median wall time (s)" "0 ms" "$delay ms" "ratio"
printf '%-28s %10s %10s %8s\n' "plan, $buckets buckets" "${result[near_plan]}" "${result[far_plan]}" "$(ratio "${result[far_plan]}" "${result[near_plan]}")"
printf '%-28s %10s %10s %8s\n' "byte_count, $objects objects" "${result[near_count]}" "${result[far_count]}" "$(ratio "${result[far_count]}" "${result[near_count]}")"
printf '%-28s %10s %10s %8s\n' "aws s3 sync, $objects objects" "${result[near_sync]}" "${result[far_sync]}" "$(ratio "${result[far_sync]}" "${result[near_sync]}")"
