"""``from_yaml`` as MiV's ``miv_simulator.utils.from_yaml`` (parsed by the engine's YAML reader)."""

import json

from . import _args, _miv


def from_yaml(filepath):
    """The YAML file ``filepath`` as Python values (dicts, lists, numbers, strings)."""
    path = _args.existing_file("filepath", filepath)
    with open(path, encoding="utf-8") as f:
        return json.loads(_miv.yaml_to_json(f.read(), path))
