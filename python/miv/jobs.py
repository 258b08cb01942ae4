"""Construction and whole runs: ``miv.build`` (the construction jobs of a network YAML, cached in a store),
``miv.run`` (an experiment YAML, as ``miv run``) and ``miv.study`` (the separation study, as ``miv study``).
All collective."""

import os

from . import _args, _miv


class GraphFiles(dict):
    """The network's files as the seed's ``graph.files()`` gives them: ``files["cells"]`` /
    ``files.cells`` and ``files["connections"]`` / ``files.connections``; ``jobs`` lists the launched jobs as
    (kind, id, directory)."""

    def __init__(self, cells, connections, jobs=()):
        super().__init__(cells=cells, connections=connections)
        self.jobs = list(jobs)

    @property
    def cells(self):
        return self["cells"]

    @property
    def connections(self):
        return self["connections"]

    def files(self):
        return self


def build(network, store=None):
    """Build the network of ``network`` (a network YAML, docs/network-yaml.md) through the cached
    construction jobs (h5_types, network_architecture, measure_distances, per population
    generate_synapse_forest, distribute_synapses, generate_connections, neuroh5_graph) into ``store``
    (default ``.miv-store`` beside the YAML); a job already in the store is not run again. Returns the
    files (``GraphFiles``)."""
    path = _args.existing_file("network", network)
    if store is None:
        store = os.path.join(os.path.dirname(os.path.abspath(path)), ".miv-store")
    store = _args.as_path("store", store)
    r = _miv.build(path, store)
    return GraphFiles(r["cells"], r["connections"], r["jobs"])


def run(experiment, threads=None):
    """Run an experiment YAML (docs/run-yaml.md) as ``miv run`` does: build, load, simulate, write its outputs.
    Returns the spike count on rank 0 (None elsewhere)."""
    path = _args.existing_file("experiment", experiment)
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 0):
        raise ValueError(f"threads: expected an integer >= 0, got {threads!r}")
    return _miv.run_experiment(path, threads)


def study(study, out, trials=None, t_end=None):
    """The separation study of a study YAML (docs/api.md, ``miv study``) into the folder ``out``: readouts.h5,
    separation.csv, separation.png, and the run cache."""
    path = _args.existing_file("study", study)
    out = _args.as_path("out", out)
    if trials is not None and (isinstance(trials, bool) or not isinstance(trials, int) or trials < 1):
        raise ValueError(f"trials: expected an integer >= 1, got {trials!r}")
    if t_end is not None:
        t_end = _args.number("t_end", t_end, positive=True)
    _miv.study(path, out, trials, t_end)
