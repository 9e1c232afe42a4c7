#!/usr/bin/env bash
# Benchmarks of local jobs, each measured side by side with its peer in one run:
#
#   1. word_count over a deterministic corpus (400 files, 400 MiB by default) against a
#      Python multiprocessing.Pool word count (bench/wordcount_pool.py) and `wc -w`;
#      all three counts must agree.
#   2. 1,000 `command` tasks of `true` against `xargs -P <cores>` running the same.
#   3. Reading 1,000 small S3 objects from a local moto: a byte_count job (every body
#      downloaded, concurrently) against `aws s3 sync` (awscli, in a venv under target/).
#
# Wall times are the median of RUNS runs (page cache warm: each is run once first).
# Loopback only. Results go to bench/RESULTS.md by hand.
#
#   bench/jobs.sh                    # all three
#   FILES=40 FILE_KB=1024 bench/jobs.sh wordcount
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
runs="${RUNS:-5}"
files="${FILES:-400}"
file_kb="${FILE_KB:-1024}"
which="${1:-all}"
cores="$(nproc)"

cargo build --quiet --release --bin tether
tether="$root/target/release/tether"
work="$(mktemp -d)"
# shellcheck source=../tests/support/moto.sh
source tests/support/moto.sh
trap 'kill "$moto_pid" 2>/dev/null || true; rm -rf "$work"' EXIT
export NO_COLOR=1 LC_ALL=C

# The median wall time in seconds of running "$@" RUNS times, after one warm-up run.
median() {
  "$@" >/dev/null 2>&1
  local times=()
  for _ in $(seq 1 "$runs"); do
    local start end
    start=$(date +%s.%N)
    "$@" >/dev/null 2>&1
    end=$(date +%s.%N)
    times+=("$(echo "$end - $start" | bc -l)")
  done
  printf '%s\n' "${times[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}

ratio() { echo "scale=1; $1 / $2" | bc -l; }

if [[ "$which" == all || "$which" == wordcount ]]; then
  corpus="$root/target/bench-corpus-$files-$file_kb"
  if [[ ! -d "$corpus" ]]; then
    python3 bench/make_corpus.py "$corpus.tmp" "$files" $((file_kb * 1024))
    mv "$corpus.tmp" "$corpus"
  fi
  mib=$(( files * file_kb / 1024 ))
  mkdir -p "$work/wc"
  cat >"$work/wc/tether.yaml" <<SPEC
project: bench
region: us-east-1
jobs:
  word-count:
    inputs: $corpus/*.txt
    builtin: word_count
    output: ./word-count.json
SPEC
  (cd "$work/wc" && "$tether" run >/dev/null 2>&1)
  tether_words=$(python3 -c "import json; print(json.load(open('$work/wc/word-count.json'))['total'])")
  pool_words=$(python3 bench/wordcount_pool.py "$corpus"/*.txt)
  wc_words=$(wc -w "$corpus"/*.txt | tail -n 1 | awk '{print $1}')
  echo "word_count over $files files, $mib MiB, $cores cores"
  echo "  words: tether $tether_words, Pool $pool_words, wc -w $wc_words"
  if [[ "$tether_words" != "$pool_words" || "$tether_words" != "$wc_words" ]]; then
    echo "  the counts differ" >&2
    exit 1
  fi
  t_tether=$(median bash -c "cd '$work/wc' && '$tether' run")
  t_pool=$(median python3 bench/wordcount_pool.py "$corpus"/*.txt)
  t_pool_bytes=$(WORDCOUNT_BYTES=1 median python3 bench/wordcount_pool.py "$corpus"/*.txt)
  t_wc=$(median bash -c "wc -w '$corpus'/*.txt")
  printf '  tether run     %6.3f s  %7.0f MiB/s\n' "$t_tether" "$(echo "$mib / $t_tether" | bc -l)"
  printf '  Python Pool    %6.3f s  %7.0f MiB/s  (tether %sx)\n' "$t_pool" "$(echo "$mib / $t_pool" | bc -l)" "$(ratio "$t_pool" "$t_tether")"
  printf '  Pool, bytes    %6.3f s  %7.0f MiB/s  (tether %sx)\n' "$t_pool_bytes" "$(echo "$mib / $t_pool_bytes" | bc -l)" "$(ratio "$t_pool_bytes" "$t_tether")"
  printf '  wc -w          %6.3f s  %7.0f MiB/s  (tether %sx)\n' "$t_wc" "$(echo "$mib / $t_wc" | bc -l)" "$(ratio "$t_wc" "$t_tether")"
fi

if [[ "$which" == all || "$which" == tasks ]]; then
  mkdir -p "$work/tasks/in"
  for i in $(seq -w 1 1000); do : >"$work/tasks/in/$i"; done
  cat >"$work/tasks/tether.yaml" <<SPEC
project: bench
region: us-east-1
jobs:
  nothing:
    inputs: ./in/*
    command: "true {input}"
    mode: cpu
SPEC
  t_tether=$(median bash -c "cd '$work/tasks' && '$tether' run")
  t_xargs=$(median bash -c "cd '$work/tasks' && ls in | sed 's|^|in/|' | xargs -P $cores -n 1 sh -c 'true \"\$0\"'")
  echo "1,000 tasks of \`true\` (each through sh -c), $cores at once"
  printf '  tether run     %6.3f s\n' "$t_tether"
  printf '  xargs -P %s     %6.3f s  (tether/xargs %s)\n' "$cores" "$t_xargs" "$(echo "scale=2; $t_tether / $t_xargs" | bc -l)"
fi

if [[ "$which" == all || "$which" == s3 ]]; then
  venv="$root/target/bench-venv"
  if [[ ! -x "$venv/bin/aws" ]]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet awscli
  fi
  start_moto "$work/moto.log"
  export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
  export AWS_CONFIG_FILE=/nonexistent AWS_SHARED_CREDENTIALS_FILE=/nonexistent
  mkdir -p "$work/s3/objects"
  cat >"$work/s3/tether.yaml" <<SPEC
project: bench
region: us-east-1
buckets:
  bench-objects: {force_destroy: true}
jobs:
  fetch:
    inputs: s3://bench-objects/small/
    builtin: byte_count
SPEC
  (cd "$work/s3" && "$tether" apply --auto-approve --no-jobs >/dev/null 2>&1)
  python3 bench/make_corpus.py "$work/s3/objects" 1000 2048
  "$venv/bin/aws" --endpoint-url "$AWS_ENDPOINT_URL" s3 cp --recursive --quiet "$work/s3/objects" s3://bench-objects/small/
  t_tether=$(median bash -c "cd '$work/s3' && '$tether' run")
  t_sync=$(median bash -c "rm -rf '$work/s3/synced' && '$venv/bin/aws' --endpoint-url '$AWS_ENDPOINT_URL' s3 sync --quiet s3://bench-objects/small/ '$work/s3/synced'")
  echo "reading 1,000 objects of 2 KiB from local moto"
  printf '  tether run     %6.3f s\n' "$t_tether"
  printf '  aws s3 sync    %6.3f s  (tether %sx)\n' "$t_sync" "$(ratio "$t_sync" "$t_tether")"
fi
