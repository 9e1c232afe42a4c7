#!/usr/bin/env bash
# Benchmark: a no-change `tether plan` of a spec with 200 buckets against a local moto.
# Records wall time (median of RUNS runs) and the number of API calls one plan makes,
# counted independently of tether from moto's request log, and tether's own CPU time and
# peak memory (GNU time). Loopback only.
#
#   bench/plan-200-buckets.sh            # release build, 200 buckets, 5 runs
#   BUCKETS=50 RUNS=3 bench/plan-200-buckets.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
buckets="${BUCKETS:-200}"
runs="${RUNS:-5}"

cargo build --quiet --release --bin tether
tether="$root/target/release/tether"
work="$(mktemp -d)"
# shellcheck source=../tests/support/moto.sh
source tests/support/moto.sh
trap 'kill "$moto_pid" 2>/dev/null; rm -rf "$work"' EXIT
start_moto "$work/moto.log"
export NO_COLOR=1

{
  echo "project: bench"
  echo "region: us-east-1"
  echo "buckets:"
  for i in $(seq -w 1 "$buckets"); do
    if (( 10#$i % 2 )); then
      echo "  bench-bucket-$i: {public_read: true, tags: {team: ds}}"
    else
      echo "  bench-bucket-$i: {tags: {team: ml}}"
    fi
  done
} >"$work/tether.yaml"
cd "$work"
"$tether" apply --auto-approve --parallelism 20 >/dev/null 2>&1

times=()
for run in $(seq 1 "$runs"); do
  before=$(grep -cE 'HTTP/1\.1.* [0-9]{3} ' moto.log || true)
  start=$(date +%s.%N)
  if [ -x /usr/bin/time ]; then
    /usr/bin/time -f "%U %S %M" -o "$work/cpu" "$tether" plan --detailed-exitcode >/dev/null 2>&1
    read -r user sys rss <"$work/cpu"
  else
    "$tether" plan --detailed-exitcode >/dev/null 2>&1
    user=? sys=? rss=?
  fi
  end=$(date +%s.%N)
  after=$(grep -cE 'HTTP/1\.1.* [0-9]{3} ' moto.log || true)
  times+=("$(python3 -c "print(f\"{$end - $start:.3f}\")")")
  calls=$((after - before))
done
median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n "$(( (runs + 1) / 2 ))p")
echo "buckets=$buckets runs=$runs median_wall_s=$median api_calls_per_plan=$calls all_runs_s=${times[*]}"
echo "last run: tether cpu user=${user}s sys=${sys}s max_rss=${rss}KiB"
