"""Run the body of MiV-Simulator-Cases' `3-interface-api/interface/experiment/rc.py` (Reservoir.__call__) on given
cells.h5 / connections.h5 with MiV-Simulator, NEURON and neuroh5, without machinable; write spikes, the LFP
readout, optional soma voltage traces and the load/init/run times.

    mpirun -n 2 python run_rc.py --cells cells.h5 --connections connections.h5 --cell-types cell_types.yml \
        --synapses synapses.yml --stimulus stimulus.txt --templates TEMPLATES --mechanisms MECHANISMS \
        --t-end 100 --seed 1 --out OUTDIR [--probe GID ...]

Outputs in OUTDIR: spikes.csv (`gid,t_ms`, sorted by time then gid), lfp.csv (`t_ms,v`), lfp_cells.json (the
cells MiV's LFP selected, per population, with their type 1/2), probes.csv (soma(0.5) v of --probe gids every
0.1 ms), timing.json. See README.md for the work-arounds this needs.
"""

import argparse
import json
import os
import sys
import time

import numpy as np
import yaml

ap = argparse.ArgumentParser()
ap.add_argument("--cells", required=True)
ap.add_argument("--connections", required=True)
ap.add_argument("--cell-types", required=True)
ap.add_argument("--synapses", required=True)
ap.add_argument("--stimulus", required=True, help="text file of spike times (ms); STIM gid g plays [g::10]")
ap.add_argument("--templates", required=True)
ap.add_argument("--mechanisms", required=True)
ap.add_argument("--t-end", type=float, default=100.0)
ap.add_argument("--seed", type=int, default=1, help="the component seed: LFP seed = seed + 1, as rc.py")
ap.add_argument("--out", required=True)
ap.add_argument("--probe", type=int, action="append", default=[], help="record soma(0.5) v of this gid")
ap.add_argument("--no-lfp", action="store_true")
ap.add_argument("--probe-dt", type=float, default=0.1, help="probe sampling interval (ms)")
args = ap.parse_args()

from mpi4py import MPI  # noqa: E402

t_start = time.time()
from neuron import h  # noqa: E402

from miv_simulator import config, simulator  # noqa: E402
from miv_simulator.lfp import LFP  # noqa: E402
from miv_simulator.utils.neuron import configure_hoc  # noqa: E402

comm = MPI.COMM_WORLD
rank = comm.Get_rank()
os.makedirs(args.out, exist_ok=True)


def load_yaml(p):
    with open(p) as f:
        return yaml.safe_load(f)


# Work-around: cell_types as plain dicts (load_cells indexes and mutates them as dicts). Keys MiV does not know
# (miv's `discretization`) are dropped.
cell_types = {
    pop: {k: v for k, v in ct.items() if k in ("template", "mechanism", "synapses")}
    for pop, ct in load_yaml(args.cell_types).items()
}
# Work-around: synapses validated by MiV's pydantic config (load_connections reads `.mechanisms` as attributes),
# then each synapse's mechanisms back to plain dicts (config_syn iterates them with .items()).
from pydantic import TypeAdapter  # noqa: E402

synapses = TypeAdapter(config.Synapses).validate_python(load_yaml(args.synapses))
for post, pres in synapses.items():
    for pre, syn in pres.items():
        syn.mechanisms = {name: m.model_dump() for name, m in syn.mechanisms.items()}

# Work-around: MiV's mechanisms.load expects nrnivmodl's output in compiled/x86_64/.libs/libnrnmech.so, where
# NEURON >= 9 writes compiled/x86_64/libnrnmech.so: compile as MiV does (rank 0), then link the name it expects.
if rank == 0:
    from miv_simulator import mechanisms as miv_mechanisms

    compiled = miv_mechanisms.compile(args.mechanisms)
    want = os.path.join(compiled, "x86_64", ".libs", "libnrnmech.so")
    if not os.path.exists(want):
        os.makedirs(os.path.dirname(want), exist_ok=True)
        os.symlink(os.path.join("..", "libnrnmech.so"), want)
comm.Barrier()

# The body of Reservoir.__call__ (rc.py), with timers.
h = configure_hoc(mechanisms_directory=args.mechanisms)
env = simulator.ExecutionEnvironment(seed=args.seed)
comm.Barrier()
t0 = time.time()
env.load_cells(filepath=args.cells, cell_types=cell_types, templates=args.templates)
comm.Barrier()
t1 = time.time()
env.load_connections(filepath=args.connections, cell_filepath=args.cells, synapses=synapses)
comm.Barrier()
t2 = time.time()

lfp = None
if not args.no_lfp:
    lfp = LFP(
        "ReadoutElectrode",
        env.pc,
        pop_gid_dict={
            pop_name: set(env.cells[pop_name].keys()).difference(set(env.artificial_cells[pop_name].keys()))
            for pop_name in env.cells.keys()
        },
        pos=[500.0, 500.0, 0.0],
        rho=333.0,
        dt_lfp=0.1,
        fdst=0.1,
        maxEDist=100.0,
        seed=args.seed + 1,
    )

stimulus = np.loadtxt(args.stimulus, comments="#").ravel()
# The played vectors are kept alive here: the Cases' VecStim holds a reference to its vector, miv's
# (bench/miv-reference/standin-mechanisms.sh) does not.
played = []
for gid, cell in env.artificial_cells["STIM"].items():
    if not env.pc.gid_exists(gid):
        continue
    played.append(h.Vector(np.array(stimulus)[int(gid) :: 10]))
    cell.play(played[-1])

probes = []
for gid in args.probe:
    if env.pc.gid_exists(gid):
        cell = env.pc.gid2cell(gid)
        soma = list(cell.soma_list)[0]
        vec = h.Vector()
        vec.record(soma(0.5)._ref_v, args.probe_dt)
        probes.append((gid, vec))

h.v_init = -65
h.stdinit()
h.secondorder = 2
h.dt = 0.025
env.pc.timeout(600.0)
h.finitialize(h.v_init)
comm.Barrier()
t3 = time.time()
env.pc.psolve(args.t_end)
comm.Barrier()
t4 = time.time()

# Outputs: spikes from every rank, LFP from rank 0.
local = list(zip([int(g) for g in env.id_vec], [float(t) for t in env.t_vec]))
allspikes = comm.gather(local, root=0)
lfp_cells = None
if lfp is not None:
    lfp_cells = {p: [[int(g), int(ty)] for g, ty in zip(lfp.lfp_ids[p], lfp.lfp_types[p])] for p in lfp.lfp_ids}
lfp_cells = comm.gather(lfp_cells, root=0)
probes = comm.gather([(g, list(v)) for g, v in probes], root=0)
ncells = comm.reduce(
    sum(len(set(env.cells[p].keys()) - set(env.artificial_cells[p].keys())) for p in env.cells), root=0
)
if rank == 0:
    spikes = sorted((t, g) for part in allspikes for g, t in part)
    with open(os.path.join(args.out, "spikes.csv"), "w") as f:
        f.write("gid,t_ms\n")
        for t, g in spikes:
            f.write(f"{g},{t!r}\n")
    if lfp is not None:
        with open(os.path.join(args.out, "lfp.csv"), "w") as f:
            f.write("t_ms,v\n")
            for t, v in zip(lfp.t, lfp.meanlfp):
                f.write(f"{t!r},{v!r}\n")
        merged = {}
        for part in lfp_cells:
            for p, cells in part.items():
                merged.setdefault(p, []).extend(cells)
        with open(os.path.join(args.out, "lfp_cells.json"), "w") as f:
            json.dump(merged, f, sort_keys=True)
    pr = [p for part in probes for p in part]
    if pr:
        n = min(len(v) for _, v in pr)
        with open(os.path.join(args.out, "probes.csv"), "w") as f:
            f.write("t_ms," + ",".join(f"v{g}" for g, _ in pr) + "\n")
            for i in range(n):
                f.write(f"{i * args.probe_dt:.4f}," + ",".join(repr(v[i]) for _, v in pr) + "\n")
    timing = {
        "ranks": comm.Get_size(),
        "cells": ncells,
        "t_end_ms": args.t_end,
        "import_s": t0 - t_start,
        "load_cells_s": t1 - t0,
        "load_connections_s": t2 - t1,
        "init_s": t3 - t2,
        "run_s": t4 - t3,
        "neuron": h.nrnversion(),
    }
    with open(os.path.join(args.out, "timing.json"), "w") as f:
        json.dump(timing, f, indent=1)
    print(json.dumps(timing))
