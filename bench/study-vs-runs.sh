#!/bin/bash
# The separation study as one job (`miv study`) versus the same number of separate `miv run`s of the seed's
# experiment, wall time on 1 and 2 ranks, interleaved (study, runs, study, runs, ...). Prints a table.
#
#   bench/study-vs-runs.sh [T_END_MS] [TRIALS] [REPS]     (defaults 50 1 2; run from the checkout, after make build)
#
# The study uses examples/rc-separation/study.yaml (4 distances) with --t-end and --trials, into a fresh
# directory each time (no cache). The separate arm runs examples/rc-network/experiment.yaml with the same t_end,
# 2 x 4 x TRIALS times, each a new process that reads the network files again: the cost a user of one
# `miv run` per simulation pays. Its inputs are the experiment's own stimulus, not the study's pairs, so the
# two arms simulate different activity: compare their simulation times too (docs/bench.md).
set -euo pipefail
cd "$(dirname "$0")/.."
T=${1:-50}
TRIALS=${2:-1}
REPS=${3:-2}
MIV=$PWD/target/release/miv
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
work=$(mktemp -d)
trap 'rm -rf "$work" examples/rc-network/.bench-study-vs-runs.yaml' EXIT
exp=examples/rc-network/.bench-study-vs-runs.yaml
sed -e "s/^t_end: .*/t_end: $T/" -e "s|^  path: .*|  path: $work/r.h5|" -e "s|^  spikes_csv: .*|  spikes_csv: $work/s.csv|" \
  examples/rc-network/experiment.yaml >"$exp"
runs=$((2 * 4 * TRIALS))
launch() { if [ "$1" = 1 ]; then echo ""; else echo "mpirun -n $1"; fi; }
now() { date +%s.%N; }
# Build (cached) once, outside the timings.
"$MIV" -q run "$exp" >/dev/null
printf '%-6s %-5s %-4s %10s\n' ranks arm rep wall_s
for rep in $(seq 1 "$REPS"); do
  for n in 1 2; do
    L=$(launch "$n")
    t0=$(now)
    $L "$MIV" -q study examples/rc-separation/study.yaml --out "$work/study-$n-$rep" --t-end "$T" --trials "$TRIALS" >/dev/null
    t1=$(now)
    printf '%-6s %-5s %-4s %10.1f\n' "$n" study "$rep" "$(awk "BEGIN{print $t1 - $t0}")"
    t0=$(now)
    for _ in $(seq 1 "$runs"); do $L "$MIV" -q run "$exp" >/dev/null; done
    t1=$(now)
    printf '%-6s %-5s %-4s %10.1f\n' "$n" runs "$rep" "$(awk "BEGIN{print $t1 - $t0}")"
  done
done
