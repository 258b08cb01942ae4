"""A ring network loaded and run from Python gives the spikes `miv run` gives on the same files, on one rank
and under mpirun -n 2; cell types and synapses as a path, a YAML string or a dict; reset, state, weights and
probes through the Python API."""

import os

import h5py
import numpy as np

import miv

RULES = {"AMPA": {"mechanism": "Exp2Syn", "netcon": ["weight"]}}


def load(net, cell_types=None, synapses=None):
    env = miv.ExecutionEnvironment(seed=0, dt=0.025)
    env.load_cells(
        filepath=os.path.join(net, "cells.h5"),
        cell_types=cell_types or os.path.join(net, "cell_types.yml"),
        templates=os.path.join(net, "templates"),
    )
    env.load_connections(
        filepath=os.path.join(net, "connections.h5"),
        cell_filepath=os.path.join(net, "cells.h5"),
        synapses=synapses or os.path.join(net, "synapses.yml"),
        synapse_mechanisms=RULES,
    )
    env.add_event(0, 0, 5.005, [0.01])  # the experiment's direct event
    return env


def spikes_of(env):
    s = env.gather_spikes()
    if s is None:
        return None
    gids, t = s
    assert gids.dtype == np.uint64 and t.dtype == np.float64
    return [(int(g), float(x)) for g, x in zip(gids, t)]


def test_same_spikes_as_miv_run(ring):
    net, cli = ring
    env = load(net)
    assert (env.rank, env.size) == (miv.rank, miv.size)
    assert sorted(g for cells in env.cells.values() for g in cells) == [g for g in range(4) if g % miv.size == miv.rank]
    env.finitialize(-65.0)
    # BallStick: hh in its one soma compartment, pas in its 11 dendrite compartments, and one Exp2Syn for the
    # ring connection onto it.
    k = len([g for g in range(4) if g % miv.size == miv.rank])
    assert env.mechanism_counts() == {"hh": k, "pas": 11 * k, "Exp2Syn": k}
    env.psolve(100.0)
    got = spikes_of(env)
    if miv.rank == 0:
        assert len(cli) == 14
        assert got == cli, f"python {got}\ncli {cli}"
    else:
        assert got is None


def test_config_as_path_yaml_string_or_dict(ring):
    net, cli = ring
    yaml_text = "BS:\n  template: BallStick\n  synapses:\n    weights: {namespace: Synapse Weights}\n"
    as_dict = miv.utils.from_yaml(os.path.join(net, "synapses.yml"))
    assert as_dict["BS"]["BS"]["mechanisms"]["AMPA"]["weight"] == 0.01
    env = load(net, cell_types=yaml_text, synapses=as_dict)
    env.finitialize(-65.0)
    env.psolve(100.0)
    got = spikes_of(env)
    if miv.rank == 0:
        assert got == cli


def test_reset_state_weights_probes_and_results_file(ring, scratch):
    net, cli = ring
    env = load(net)
    label = env.record(1, section=0, x=0.5, variable="v", every_steps=4)
    env.finitialize(-65.0)
    env.psolve(40.0)
    first = (spikes_of(env), env.gather_traces())
    # psolve in steps after reset equals one psolve.
    env.reset()
    assert env.t == 0.0
    for t in (7.5, 20.0, 40.0):
        env.psolve(t)
    again = (spikes_of(env), env.gather_traces())
    if miv.rank == 0:
        assert first[0] == again[0] == [s for s in cli if s[1] <= 40.0]
        v = first[1][label]
        assert v.dtype == np.float64 and len(v) == 401  # every 4 steps of 0.025 ms from 0 to 40 ms
        assert np.array_equal(v, again[1][label])
        assert v[0] == -65.0 and v.max() > 0.0, "gid 1 fires within 40 ms"
    # State and weights on the owner of the gid.
    if env.pc.gid_exists(2):
        v2 = env.state(2, section=0, x=0.5, variable="v")
        assert -80.0 < v2 < 60.0
        env.set_state(2, 40.0)
        assert env.state(2) == 40.0
    if env.pc.gid_exists(1):
        w = env.netcon_weights(0, 1)
        assert len(w) == 1 and w[0][0] == np.float32(0.01)
    # Weight 0 on 0 -> 1 stops the ring after gid 0 (the direct event still makes gid 0 fire once).
    env.set_netcon_weights(0, 1, 0, [0.0])
    env.reset()
    env.psolve(100.0)
    cut = spikes_of(env)
    if miv.rank == 0:
        assert cut == [cli[0]]
    # The results file, readable with h5py: the spikes of the last run.
    out = os.path.join(scratch, f"ring-results-{miv.size}.h5")
    env.write_output(out)
    if miv.rank == 0:
        with h5py.File(out, "r") as f:
            events = f["Populations/BS/Spike Events/t"]
            assert list(events["Cell Index"][:]) == [0]
            assert list(events["Attribute Value"][:]) == [np.float32(cli[0][1])]
