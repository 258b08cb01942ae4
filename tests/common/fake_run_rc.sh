#!/bin/sh
# Stands in for bench/miv-reference/run_rc.py in tests/bench_miv.rs: takes its arguments, writes what it
# writes (spikes.csv, timing.json in --out) and prints the timing JSON, with fixed times. Records its
# arguments in --out/args.txt, one per line.
out=""
prev=""
for a in "$@"; do
    if [ "$prev" = "--out" ]; then out="$a"; fi
    prev="$a"
done
[ -n "$out" ] || { echo "no --out" >&2; exit 2; }
mkdir -p "$out"
: > "$out/args.txt"
for a in "$@"; do printf '%s\n' "$a" >> "$out/args.txt"; done
printf 'gid,t_ms\n64,1.5\n70,2.25\n98,3.0\n' > "$out/spikes.csv"
json='{"ranks": 1, "cells": 106, "import_s": 0.5, "load_cells_s": 4.0, "load_connections_s": 6.0, "init_s": 3.0, "run_s": 50.0}'
printf '%s\n' "$json" > "$out/timing.json"
echo "some output of MiV"
printf '%s\n' "$json"
