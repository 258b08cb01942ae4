"""Construction from Python: `miv.build(network.yaml)` and the chained form (examples/python/rc_build.py, job
by job as the seed's rc-separation.py) give the same jobs (identities) and files; errors name the argument."""

import os
import sys

import pytest

import miv
from conftest import ROOT

sys.path.insert(0, os.path.join(ROOT, "examples", "python"))
import rc_build  # noqa: E402

NET = os.path.join(ROOT, "examples", "rc-network")


def test_chained_jobs_equal_build():
    store = os.path.join(NET, ".miv-store")
    built = miv.build(os.path.join(NET, "network.yaml"), store=store)
    assert built.files() is built and os.path.isfile(built.cells) and os.path.isfile(built["connections"])
    kinds = [k for k, _, _ in built.jobs]
    assert kinds[0] == "h5_types" and kinds[-1] == "neuroh5_graph" and kinds.count("generate_connections") == 3
    graph = rc_build.chain(store)
    assert graph.kind == "neuroh5_graph" and graph.cached, "the chain launches the jobs miv.build made"
    assert graph.files() == {"cells": str(built.cells), "connections": str(built.connections)}
    assert sorted((r["kind"], r["id"]) for r in graph.config["uses"]) == sorted(
        (k, i) for k, i, _ in built.jobs if k not in ("h5_types", "neuroh5_graph"))


def test_job_errors_name_the_argument(scratch):
    with pytest.raises(ValueError, match=r"^kind: 'nosuch' is not a construction job"):
        miv.get("miv_simulator.interface.nosuch")
    with pytest.raises(ValueError, match=r"^config: expected a dict"):
        miv.get("h5_types", 3)
    with pytest.raises(ValueError, match=r"h5_types.*cell_distributions"):
        miv.get("h5_types", {"projections": {}, "population_definitions": {}}).launch(os.path.join(scratch, "store"))
    types = miv.get("h5_types", {"cell_distributions": {"A": {"L": 2}}, "projections": {},
                                 "population_definitions": {"A": 0}}).launch(os.path.join(scratch, "store"))
    assert types.kind == "h5_types" and os.path.isdir(types.directory)
    with pytest.raises(ValueError, match=r"^uses: a measure_distances job does not use a h5_types job"):
        miv.get("measure_distances", {}, uses=types)
    with pytest.raises(ValueError, match=r"^files\(\): a h5_types job has no network files"):
        types.files()
