#!/bin/bash
# Two threads against two ranks on one experiment, interleaved (1 thread, 2 threads, 2 ranks, in turn, ROUNDS
# times), optionally with one core kept busy by another process. Prints every round's `run_s` (from
# `miv run --json`) and the speed-ups per round, median [min..max]: 2 threads over 1 thread, 2 ranks over 1.
#
#   bench/threads-vs-ranks.sh [EXPERIMENT] [T_END_MS] [ROUNDS] [BUSY]
#       defaults: examples/rc-network/experiment.yaml 50 3 0; BUSY 1 (argument or variable) runs
#       `yes > /dev/null` during the rounds
#   BASELINE=/path/to/other/miv bench/threads-vs-ranks.sh ...   adds that binary's 1 and 2 threads to each round
#
# Run from the checkout after `make build`. The experiment's outputs go to a temporary folder; its network is
# built (cached) once before the rounds. Spikes of every configuration are compared with the first one's.
set -euo pipefail
cd "$(dirname "$0")/.."
EXP=${1:-examples/rc-network/experiment.yaml}
T=${2:-50}
ROUNDS=${3:-3}
BUSY=${4:-${BUSY:-0}}
MIV=$PWD/target/release/miv
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
work=$(mktemp -d)
dir=$(dirname "$EXP")
busy=""
cleanup() {
  [ -n "$busy" ] && kill "$busy" 2>/dev/null
  rm -rf "$work" "$dir"/.bench-threads-vs-ranks-*.yaml
}
trap cleanup EXIT
# name binary threads ranks
configs=("t1 $MIV 1 1" "t2 $MIV 2 1" "r2 $MIV 1 2")
if [ -n "${BASELINE:-}" ]; then
  configs+=("base_t1 $BASELINE 1 1" "base_t2 $BASELINE 2 1")
fi
for c in "${configs[@]}"; do
  read -r name _ _ _ <<<"$c"
  sed -e "s|^  path: .*|  path: $work/$name.h5|" -e "s|^  spikes_csv: .*|  spikes_csv: $work/$name.csv|" \
    "$EXP" >"$dir/.bench-threads-vs-ranks-$name.yaml"
done
"$MIV" -q run "$dir/.bench-threads-vs-ranks-t1.yaml" --t-end 0.1 >/dev/null
if [ "$BUSY" = 1 ]; then
  yes >/dev/null &
  busy=$!
fi
run() {
  local name=$1 bin=$2 threads=$3 ranks=$4 L=""
  [ "$ranks" -gt 1 ] && L="mpirun -n $ranks"
  $L "$bin" -q run "$dir/.bench-threads-vs-ranks-$name.yaml" --t-end "$T" --threads "$threads" --json |
    tail -n 1 | sed -n 's/.*"run_s":\([0-9.eE+-]*\).*/\1/p'
}
header="round"
for c in "${configs[@]}"; do read -r name _ <<<"$c"; header="$header $name"; done
echo "$header   (run_s; t_end $T ms, busy core: $BUSY)"
: >"$work/rows"
for r in $(seq 1 "$ROUNDS"); do
  row="$r"
  for c in "${configs[@]}"; do
    # shellcheck disable=SC2086
    row="$row $(run $c)"
  done
  echo "$row" | tee -a "$work/rows"
done
for c in "${configs[@]:1}"; do
  read -r name _ <<<"$c"
  cmp -s "$work/t1.csv" "$work/$name.csv" || echo "spikes of $name differ from t1's"
done
# Speed-up per round of column b over column a: median [min..max].
ratio() {
  awk -v a="$1" -v b="$2" '{print $a / $b}' "$work/rows" | sort -g |
    awk '{v[NR] = $1} END {m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2;
      printf "%.2f [%.2f..%.2f]\n", m, v[1], v[NR]}'
}
echo "2 threads over 1 thread: $(ratio 2 3)"
echo "2 ranks over 1 rank:     $(ratio 2 4)"
if [ -n "${BASELINE:-}" ]; then
  echo "baseline 2 threads over its 1 thread: $(ratio 5 6)"
  echo "1 thread, baseline time over this:    $(ratio 5 2)"
fi
