#!/usr/bin/env bash
# Installs MiV-Simulator (pinned), NEURON 9.0.2, mpi4py (system MPI) and neuroh5 (built from source, pinned)
# into a venv outside the repository. Usage: bench/miv-reference/install.sh [PREFIX]   (default /work/miv-ref)
# Sources come from git mirrors: set MIV_SIM_GIT, NEUROH5_GIT (bare repos or URLs); defaults are GitHub.
set -euo pipefail
PREFIX=${1:-${MIV_REF:-/work/miv-ref}}
MIV_SIM_COMMIT=${MIV_SIM_COMMIT:-d2f14d47dccc76df84149874eb603ac45ae4b7e7}   # MiV-Simulator-Cases' pin
NEUROH5_COMMIT=${NEUROH5_COMMIT:-4937699}   # last neuroh5 that accepts 0-based Section node indices (see README)
MIV_SIM_GIT=${MIV_SIM_GIT:-https://github.com/GazzolaLab/MiV-Simulator}
NEUROH5_GIT=${NEUROH5_GIT:-https://github.com/iraikov/neuroh5}
PY=${PYTHON:-python3}
mkdir -p "$PREFIX/src"
export CC=mpicc CXX=mpicxx

# 1. venv with NEURON 9.0.2, mpi4py against the system MPI, MiV's run-time dependencies
if [ ! -x "$PREFIX/venv/bin/python" ]; then "$PY" -m venv "$PREFIX/venv"; fi
VPY="$PREFIX/venv/bin/python"
export PATH="$PREFIX/venv/bin:$PATH"
"$VPY" -m pip install -q --upgrade pip wheel setuptools
"$VPY" -m pip install -q "neuron==9.0.2" "numpy<2" scipy h5py pyyaml pydantic click networkx future \
    quantities sympy matplotlib "cython<3" "cmake<4"
"$VPY" -m pip install -q --no-binary mpi4py mpi4py

# 2. MiV-Simulator at the pinned commit (installed without its dependency list: rbf and neuroh5 come from git)
clone_at() {  # repo commit dir: a plain export of one commit (no history, no data/ folder)
    local repo=$1 commit=$2 dir=$3
    if [ -d "$dir" ]; then return; fi
    local tmp; tmp=$(mktemp -d)
    if [ -d "$repo" ] && [ -f "$repo/HEAD" ]; then git --git-dir="$repo" archive "$commit" -- . ":(exclude)data" | tar -x -C "$tmp"
    else git clone -q "$repo" "$tmp/clone" && git -C "$tmp/clone" archive "$commit" -- . ":(exclude)data" | tar -x -C "$tmp" && rm -rf "$tmp/clone"; fi
    rm -rf "$tmp/data"; mv "$tmp" "$dir"
}
clone_at "$MIV_SIM_GIT" "$MIV_SIM_COMMIT" "$PREFIX/src/MiV-Simulator"
"$VPY" -m pip install -q --no-deps "$PREFIX/src/MiV-Simulator"

# 3. rbf: imported by miv_simulator (interpolation in construction), unused by the run: a stub package
SITE=$("$VPY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
if ! "$VPY" -c 'import rbf' 2>/dev/null; then
    mkdir -p "$SITE/rbf/pde"
    for m in __init__ interpolate basis pde/__init__ pde/nodes pde/geometry linalg; do
        echo '"""Stub of the rbf package (imported by MiV-Simulator, unused when running a network)."""' > "$SITE/rbf/$m.py"
    done
    cat >> "$SITE/rbf/interpolate.py" <<'PYEOF'
class RBFInterpolant:  # noqa: D101
    def __init__(self, *a, **k):
        raise RuntimeError("rbf stub: RBFInterpolant is not available")
PYEOF
    cat >> "$SITE/rbf/pde/nodes.py" <<'PYEOF'
def min_energy_nodes(*a, **k):
    raise RuntimeError("rbf stub: min_energy_nodes is not available")
def disperse(*a, **k):
    raise RuntimeError("rbf stub")
PYEOF
    cat >> "$SITE/rbf/basis.py" <<'PYEOF'
phs2 = phs3 = ga = None
def get_rbf(*a, **k):
    raise RuntimeError("rbf stub")
PYEOF
    cat >> "$SITE/rbf/pde/geometry.py" <<'PYEOF'
def contains(*a, **k):
    raise RuntimeError("rbf stub")
PYEOF
fi

# 4. neuroh5 from source (parallel HDF5, the MPI compilers), the Python module python_neuroh5_io
clone_at "$NEUROH5_GIT" "$NEUROH5_COMMIT" "$PREFIX/src/neuroh5"
if ! "$VPY" -c 'import neuroh5.io' 2>/dev/null; then
    mkdir -p "$PREFIX/src/neuroh5/build"
    ( cd "$PREFIX/src/neuroh5/build" &&
      cmake .. -DHDF5_PREFER_PARALLEL=TRUE -DCMAKE_BUILD_TYPE=Release \
          -DPython_EXECUTABLE="$VPY" -DPYTHON_EXECUTABLE="$VPY" > cmake.log &&
      make -j"${JOBS:-1}" python_neuroh5_io > make.log )
    so=$(find "$PREFIX/src/neuroh5/build" -name 'io*.so' | head -1)
    mkdir -p "$SITE/neuroh5"
    touch "$SITE/neuroh5/__init__.py"
    cp "$so" "$SITE/neuroh5/"
fi
"$VPY" -c 'import neuron, mpi4py, neuroh5.io, miv_simulator; print("ok: NEURON", neuron.__version__)'
