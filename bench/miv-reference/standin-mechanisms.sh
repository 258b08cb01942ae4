#!/usr/bin/env bash
# The mechanisms folder for MiV/NEURON runs of the stand-in templates (tests/reference/miv/neuron-standin):
# miv's own synapses (mechanisms/miv/LinExp2Syn.mod, LinExp2SynNMDA.mod) and VecStim (mechanisms/standard), as
# NEURON's nrnivmodl compiles them. hh and pas are NEURON's built-ins. Usage: standin-mechanisms.sh DEST
# (DEST is created; it must not exist, because MiV compiles into DEST/compiled once and reuses it).
set -euo pipefail
dest=${1:?usage: standin-mechanisms.sh DEST}
root=$(cd "$(dirname "$0")/../.." && pwd)
if [ -e "$dest" ]; then
    echo "standin-mechanisms.sh: $dest exists; give a new folder" >&2
    exit 1
fi
mkdir -p "$dest"
cp "$root/mechanisms/miv/LinExp2Syn.mod" "$root/mechanisms/miv/LinExp2SynNMDA.mod" "$dest/"
# What MiV-Simulator asks of its VecStim (network.py make_cells, cells.py register_cell): is_art() and
# position(x, y, z); and the CoreNEURON transfer functions NEURON links for a BBCOREPOINTER (unused without
# CoreNEURON). miv's own VecStim needs none of these.
{
    sed 's/^\( *ARTIFICIAL_CELL VecStim\)$/\1\n    RANGE xpos, ypos, zpos/' "$root/mechanisms/standard/VecStim.mod"
    cat <<'MOD'

COMMENT
Added by bench/miv-reference/standin-mechanisms.sh for MiV-Simulator on NEURON (see the script).
ENDCOMMENT
ASSIGNED {
    xpos
    ypos
    zpos
}

FUNCTION is_art() {
    is_art = 1
}

PROCEDURE position(a, b, c) {
    xpos = a
    ypos = b
    zpos = c
}

VERBATIM
static void bbcore_write(double* x, int* d, int* xx, int* offset, _threadargsproto_) {}
static void bbcore_read(double* x, int* d, int* xx, int* offset, _threadargsproto_) {}
ENDVERBATIM
MOD
} > "$dest/VecStim.mod"
grep -q "RANGE xpos" "$dest/VecStim.mod" || { echo "standin-mechanisms.sh: VecStim.mod changed; update the script" >&2; exit 1; }
echo "$dest: LinExp2Syn.mod LinExp2SynNMDA.mod VecStim.mod"
