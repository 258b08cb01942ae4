"""Names of ``miv_simulator.config`` that experiment scripts use as type annotations (pydantic fields):
cell types and synapses are plain dicts here, checked by the engine when loaded."""

from typing import Any, Dict

CellTypes = Dict[str, Any]
Synapses = Dict[str, Any]
