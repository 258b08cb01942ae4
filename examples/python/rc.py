"""The seed's reservoir (MiV-Simulator-Cases 3-interface-api: rc-separation.py builds the network,
interface/experiment/rc.py simulates it) as one plain Python script over miv.

    python examples/python/rc.py --t-end 500 --out OUT        # or: mpirun -n 2 python examples/python/rc.py ...

Builds examples/rc-network/network.yaml through the cached construction jobs, loads it, plays
stimulus.txt[gid::10] from every STIM cell, runs with Crank-Nicolson (dt 0.025 ms) and writes, on rank 0,
OUT/readout.npy (columns t, LFP of the ReadoutElectrode, as rc.py saves it) and OUT/results.h5.
"""

import argparse
import os

import numpy as np

import miv
from miv import LFP, configure_hoc
from miv.utils import from_yaml

HERE = os.path.dirname(os.path.abspath(__file__))
NETWORK = os.path.join(HERE, "..", "rc-network")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--t-end", type=float, default=500.0, help="simulated time (ms)")
    p.add_argument("--out", default=".", help="folder for readout.npy and results.h5")
    p.add_argument("--network", default=os.path.join(NETWORK, "network.yaml"))
    p.add_argument("--store", default=None, help="job store (default: .miv-store beside the network YAML)")
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    base = os.path.dirname(os.path.abspath(a.network))

    # rc-separation.py: the construction chain, cached in the store.
    files = miv.build(a.network, store=a.store).files()

    # interface/experiment/rc.py
    np.seterr(all="raise")
    h = configure_hoc(mechanisms_directory=None)
    env = miv.ExecutionEnvironment(seed=a.seed)

    def log(m):
        if env.rank == 0:
            print(m, flush=True)

    env.load_cells(
        filepath=files["cells"],
        cell_types=from_yaml(os.path.join(base, "cell_types.yml")),
        templates=os.path.join(base, "templates"),
    )
    env.load_connections(
        filepath=files["connections"],
        cell_filepath=files["cells"],
        synapses=from_yaml(os.path.join(base, "synapses.yml")),
    )
    lfp = LFP(
        "ReadoutElectrode",
        env.pc,
        pop_gid_dict={
            pop_name: set(env.cells[pop_name].keys()).difference(set(env.artificial_cells[pop_name].keys()))
            for pop_name in env.cells.keys()
        },
        pos=[500.0, 500.0, 0.0],  # top-center
        rho=333.0,
        dt_lfp=0.1,
        fdst=0.1,
        maxEDist=100.0,  # radius
        seed=a.seed + 1,
    )

    log("Creating stimulus")
    stimulus = np.loadtxt(os.path.join(base, "stimulus.txt"), ndmin=1)
    for gid, cell in env.artificial_cells["STIM"].items():
        if not (env.pc.gid_exists(gid)):
            continue
        spike_train = np.array(stimulus)[int(gid) :: 10]
        cell.play(h.Vector(spike_train))

    h.v_init = -65
    h.stdinit()
    h.secondorder = 2  # crank-nicholson
    h.dt = 0.025
    env.pc.timeout(600.0)

    h.finitialize(h.v_init)
    log("Finished initialization, starting the simulation")
    env.pc.psolve(a.t_end)
    log("Simulation finished, saving LFP")

    os.makedirs(a.out, exist_ok=True)
    env.write_output(os.path.join(a.out, "results.h5"))
    spikes = env.gather_spikes()
    if env.rank == 0:
        out = np.column_stack([lfp.t, lfp.meanlfp])
        np.save(os.path.join(a.out, "readout.npy"), out)
        gids, _ = spikes
        for pop, (start, count) in env.populations.items():
            n = int(np.count_nonzero((gids >= start) & (gids < start + count)))
            print(f"{pop}: {n} spikes")
        print(f"LFP ReadoutElectrode: {len(lfp.t)} samples to {lfp.t[-1]:g} ms -> {os.path.join(a.out, 'readout.npy')}")


if __name__ == "__main__":
    main()
