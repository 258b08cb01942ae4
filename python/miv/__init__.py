"""miv from Python: MiV-Simulator's imperative interface over the Rust engine.

``import miv`` joins the MPI job when the script runs under ``mpirun``/``srun`` (or the MPI that mpi4py
started, whichever was imported first) and runs as one rank otherwise. An uncaught exception on any rank of
a multi-rank job prints its traceback and aborts the whole job (``MPI_Abort``), as MiV's ``mpi_excepthook``
does. See docs/python.md.
"""

import atexit as _atexit
import sys as _sys

from . import _miv
from ._miv import MivError

rank, size = _miv.rank_size()
_miv.init_logging(0)
# Finalises MPI only when miv started it (not when mpi4py did).
_atexit.register(_miv.finalize)


def _mpi_excepthook(kind, value, tb):
    _previous_excepthook(kind, value, tb)
    try:
        _sys.stderr.flush()
        _sys.stdout.flush()
    finally:
        _miv.abort(1)


_previous_excepthook = _sys.excepthook
_sys.excepthook = _mpi_excepthook

from .env import Cell, ExecutionEnvironment, LFP, ParallelContext  # noqa: E402
from .hoc import configure_hoc, h  # noqa: E402
from .jobs import GraphFiles, Job, Launched, build, get, run, study  # noqa: E402
from . import config, utils  # noqa: E402

__all__ = [
    "Cell",
    "ExecutionEnvironment",
    "GraphFiles",
    "Job",
    "Launched",
    "get",
    "LFP",
    "MivError",
    "ParallelContext",
    "build",
    "config",
    "configure_hoc",
    "h",
    "rank",
    "run",
    "size",
    "study",
    "utils",
]
