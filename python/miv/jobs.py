"""Construction and whole runs: ``miv.build`` (the construction jobs of a network YAML, cached in a store),
``miv.run`` (an experiment YAML, as ``miv run``) and ``miv.study`` (the separation study, as ``miv study``).
All collective."""

import json
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


def run(experiment, threads=None, force_threads=False):
    """Run an experiment YAML (docs/run-yaml.md) as ``miv run`` does: build, load, simulate, write its outputs.
    ``threads`` above this rank's cores is capped unless ``force_threads`` (``miv run --force-threads``).
    Returns the spike count on rank 0 (None elsewhere)."""
    path = _args.existing_file("experiment", experiment)
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 0):
        raise ValueError(f"threads: expected an integer >= 0, got {threads!r}")
    return _miv.run_experiment(path, threads, bool(force_threads))


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


# --- The chained form: one job at a time, as the seed's rc-separation.py launches them. ---

KINDS = (
    "h5_types",
    "network_architecture",
    "measure_distances",
    "generate_synapse_forest",
    "distribute_synapses",
    "generate_connections",
    "neuroh5_graph",
)

# The configuration field that holds a used job, per (job kind, used kind).
_USES = {
    "network_architecture": {"h5_types": "h5_types"},
    "measure_distances": {"network_architecture": "architecture"},
    "generate_synapse_forest": {"network_architecture": "architecture"},
    "distribute_synapses": {"generate_synapse_forest": "forest"},
    "generate_connections": {"measure_distances": "distances", "distribute_synapses": "synapses_job"},
}

default_store = ".miv-store"


class Job:
    """A construction job not launched yet: ``kind``, its configuration (the fields of docs/jobs.md) and the
    jobs it uses. ``launch(store)`` runs it (collective), or finds it complete in the store."""

    def __init__(self, kind, config=None, uses=None):
        if kind.startswith("miv_simulator.interface."):
            kind = kind[len("miv_simulator.interface."):]
        if kind not in KINDS:
            raise ValueError(f"kind: {kind!r} is not a construction job ({', '.join(KINDS)})")
        if isinstance(config, (list, tuple)):  # MiV passes [config] for h5_types
            merged = {}
            for c in config:
                merged.update(c)
            config = merged
        if config is not None and not isinstance(config, dict):
            raise ValueError(f"config: expected a dict, got {type(config).__name__}")
        self.kind = kind
        self.config = dict(config or {})
        if uses is None:
            uses = []
        elif isinstance(uses, Launched):
            uses = [uses]
        for u in uses:
            if not isinstance(u, Launched):
                raise ValueError(f"uses: expected launched jobs, got {type(u).__name__}")
        if kind == "neuroh5_graph":
            # As NeuroH5Graph::from: sorted by (kind, id), each once.
            refs = self.config.get("uses", []) + [u.job_ref() for u in uses]
            unique = {(r["kind"], r["id"]) for r in refs}
            self.config["uses"] = [{"kind": k, "id": i} for k, i in sorted(unique)]
        else:
            fields = _USES.get(kind, {})
            for u in uses:
                if u.kind not in fields:
                    raise ValueError(f"uses: a {kind} job does not use a {u.kind} job (it uses: {', '.join(fields) or 'none'})")
                self.config[fields[u.kind]] = u.job_ref()
                if kind == "generate_connections" and u.kind == "distribute_synapses" and "synapses" in self.config:
                    # As GenerateConnections::uses: only the destination population's projections.
                    pop = u.config.get("population")
                    self.config["synapses"] = {k: v for k, v in self.config["synapses"].items() if k == pop}

    def launch(self, store=None):
        store = _args.as_path("store", store or default_store)
        text = json.dumps(self.config, default=_args._plain)
        job_id, directory, config, cached = _miv.launch_job(self.kind, text, store)
        return Launched(self.kind, job_id, directory, json.loads(config), cached, store)


class Launched:
    """A completed (or found complete) job: ``kind``, ``id``, ``directory``, ``config``, ``cached``. A launched
    ``network_architecture`` makes the jobs that follow it (MiV's ``network.measure_distances()``, ...); a
    launched ``neuroh5_graph`` gives ``files()``."""

    def __init__(self, kind, job_id, directory, config, cached, store):
        self.kind, self.id, self.directory, self.config, self.cached, self.store = (
            kind, job_id, directory, config, cached, store)

    def job_ref(self):
        return {"kind": self.kind, "id": self.id}

    def files(self):
        if self.kind != "neuroh5_graph":
            raise ValueError(f"files(): a {self.kind} job has no network files (a neuroh5_graph job has)")
        return GraphFiles(os.path.join(self.directory, "cells.h5"), os.path.join(self.directory, "connections.h5"))

    def _arch(self, what):
        if self.kind != "network_architecture":
            raise ValueError(f"{what}(): call it on a launched network_architecture job, not {self.kind}")

    def measure_distances(self, config=None):
        self._arch("measure_distances")
        base = json.loads(_miv.measure_distances_of(json.dumps(self.config), self.store))
        base.update(config or {})
        return Job("measure_distances", base)

    def generate_synapse_forest(self, config, uses=None):
        self._arch("generate_synapse_forest")
        job = Job("generate_synapse_forest", config, uses=[self] + [u for u in _list(uses) if u.kind != "measure_distances"])
        return job

    def distribute_synapses(self, config, uses=None):
        self._arch("distribute_synapses")
        return Job("distribute_synapses", config, uses=_list(uses))

    def generate_connections(self, config, uses=None):
        self._arch("generate_connections")
        return Job("generate_connections", config, uses=_list(uses))

    def __repr__(self):
        return f"<miv job {self.kind}/{self.id} {'cached' if self.cached else 'run'}>"


def _list(uses):
    if uses is None:
        return []
    return [uses] if isinstance(uses, Launched) else list(uses)


def get(kind, config=None, uses=None):
    """MiV's ``get("miv_simulator.interface.KIND", config, uses=...)``: a ``Job`` to ``launch(store)``."""
    return Job(kind, config, uses)
