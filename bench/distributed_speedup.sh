#!/usr/bin/env bash
# docs/distributed.md, "Measured here": the evaluation of data/tinystories-cloze.jsonl on
# TinyStories-656K as one process and under mpirun with 1, 2 and 4 ranks (ranks x threads = the
# machine's cores, and 4 ranks oversubscribed), each run REPEATS times, the wall time of the whole
# command (load included), and a check that every run wrote the same sentences.jsonl.
#   bash bench/distributed_speedup.sh [BUILD_DIR] [REPEATS]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
repeats=${2:-3}
model=../shared/models/TinyStories-656K
data=data/tinystories-cloze.jsonl
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mpi=(mpirun --allow-run-as-root --oversubscribe --bind-to none)
configs=(
  "plain -t 1|$build/reslens experiment $model $data -t 1 -q"
  "mpirun -np 1 -t 1|${mpi[*]} -np 1 $build/reslens experiment $model $data -t 1 -q"
  "mpirun -np 2 -t 1|${mpi[*]} -np 2 $build/reslens experiment $model $data -t 1 -q"
  "plain -t 2|$build/reslens experiment $model $data -t 2 -q"
  "mpirun -np 1 -t 2|${mpi[*]} -np 1 $build/reslens experiment $model $data -t 2 -q"
  "mpirun -np 4 -t 1|${mpi[*]} -np 4 $build/reslens experiment $model $data -t 1 -q"
)
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| command | runs (s) | best (s) |"
echo "|---|---|---:|"
first=""
for c in "${configs[@]}"; do
  label=${c%%|*}
  cmd=${c#*|}
  times=()
  for r in $(seq "$repeats"); do
    out="$work/out-$RANDOM$RANDOM"
    t0=$(date +%s.%N)
    $cmd -o "$out" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
    t1=$(date +%s.%N)
    times+=("$(awk "BEGIN{print $t1 - $t0}")")
    if [ -z "$first" ]; then first="$out/sentences.jsonl"; else cmp -s "$first" "$out/sentences.jsonl" || { echo "DIFFERENT: $label" >&2; exit 1; }; fi
  done
  best=$(printf '%s\n' "${times[@]}" | sort -n | head -1)
  echo "| $label | $(printf '%.1f ' "${times[@]}") | $(printf '%.1f' "$best") |"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg); every run wrote the same sentences.jsonl"
