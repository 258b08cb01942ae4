"""Runs the case's interface/experiment/rc.py as rewritten for miv (examples/python/interface/experiment/rc.py)
without machinable and pydantic, which are not installed here: minimal stand-ins give it what it uses
(Component with config, seed and save_file; to_dict; load_file; BaseModel; Field).

    mpirun -n 2 python case_rc_driver.py T_END OUT
"""

import importlib.util
import os
import sys
import types

import numpy as np

import miv
from miv.utils import from_yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
NET = os.path.join(ROOT, "examples", "rc-network")


class Component:
    def __init__(self, config, seed, out):
        self.config, self.seed, self._out = config, seed, out

    def save_file(self, name, data):
        np.save(os.path.join(self._out, name), data)


def stand_ins():
    machinable = types.ModuleType("machinable")
    machinable.Component = Component
    config = types.ModuleType("machinable.config")
    config.to_dict = dict
    utils = types.ModuleType("machinable.utils")
    utils.load_file = lambda path: np.loadtxt(path, ndmin=1)
    pydantic = types.ModuleType("pydantic")
    pydantic.BaseModel = type("BaseModel", (), {})
    pydantic.Field = lambda default=None, **kw: default
    sys.modules.update({"machinable": machinable, "machinable.config": config, "machinable.utils": utils,
                        "pydantic": pydantic})


def main():
    t_end, out = float(sys.argv[1]), sys.argv[2]
    stand_ins()
    path = os.path.join(ROOT, "examples", "python", "interface", "experiment", "rc.py")
    spec = importlib.util.spec_from_file_location("case_rc", path)
    case = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(case)
    files = miv.build(os.path.join(NET, "network.yaml")).files()
    config = types.SimpleNamespace(
        stimulus=os.path.join(NET, "stimulus.txt"),
        t_end=t_end,
        cells=files["cells"],
        connections=files["connections"],
        cell_types=from_yaml(os.path.join(NET, "cell_types.yml")),
        synapses=from_yaml(os.path.join(NET, "synapses.yml")),
        templates=os.path.join(NET, "templates"),
        mechanisms=None,
    )
    os.makedirs(out, exist_ok=True)
    case.Reservoir(config, seed=1, out=out)()


if __name__ == "__main__":
    main()
