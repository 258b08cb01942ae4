"""``h``: the few NEURON globals and calls MiV scripts use, acting on the last ``ExecutionEnvironment`` made.

``h.dt``, ``h.secondorder`` (0: backward Euler, 2: Crank-Nicolson), ``h.celsius`` and ``configure_hoc``'s
mechanisms folder are taken by the next ``ExecutionEnvironment``; ``h.secondorder`` can still change before the
first ``finitialize``. ``h.stdinit()`` initialises at the next ``psolve`` unless ``h.finitialize`` comes first.
"""

import numpy as np

from . import _args, _miv


class _Hoc:
    def __init__(self):
        object.__setattr__(self, "_state", {"dt": _miv.DEFAULT_DT, "secondorder": 0, "v_init": _miv.DEFAULT_V_INIT,
                                            "celsius": None, "tstop": 0.0})
        object.__setattr__(self, "_mechanisms", None)
        object.__setattr__(self, "_env", None)

    def __getattr__(self, name):
        state = object.__getattribute__(self, "_state")
        if name in state:
            return state[name]
        if name == "t":
            env = object.__getattribute__(self, "_env")
            return 0.0 if env is None else env.t
        raise AttributeError(f"h.{name}: not supported by miv (supported: dt, secondorder, v_init, celsius, tstop, t, "
                             "finitialize, stdinit, Vector)")

    def __setattr__(self, name, value):
        state = self._state
        env = self._env
        if name in ("_env", "_mechanisms"):
            object.__setattr__(self, name, value)
        elif name == "dt":
            dt = _args.number("h.dt", value, positive=True)
            if env is not None and env._env.dt() != dt:
                raise ValueError(f"h.dt: the environment was made with dt = {env._env.dt()} ms; set h.dt = {dt} "
                                 "before miv.ExecutionEnvironment(...) (or pass dt=)")
            state["dt"] = dt
        elif name == "secondorder":
            if value not in (0, 2):
                raise ValueError(f"h.secondorder: expected 0 (backward Euler) or 2 (Crank-Nicolson), got {value!r}")
            if env is not None:
                env._env.set_method("crank_nicolson" if value == 2 else "backward_euler")
            state["secondorder"] = int(value)
        elif name == "v_init":
            state["v_init"] = _args.number("h.v_init", value)
        elif name == "celsius":
            c = _args.number("h.celsius", value)
            if env is not None:
                if env._loaded:
                    raise ValueError("h.celsius: set it before load_cells")
                env._env.set_celsius(c)
            state["celsius"] = c
        elif name == "tstop":
            state["tstop"] = _args.number("h.tstop", value, minimum=0.0)
        elif name == "t":
            raise ValueError("h.t: read-only in miv (reset() or finitialize() go back to 0)")
        else:
            raise AttributeError(f"h.{name}: not supported by miv")

    def _current(self, what):
        if self._env is None:
            raise ValueError(f"h.{what}: no miv.ExecutionEnvironment yet")
        return self._env

    def finitialize(self, v_init=None):
        """Collective: ``finitialize`` of the current environment (``h.v_init`` when no value is given)."""
        env = self._current("finitialize")
        env.finitialize(self.v_init if v_init is None else v_init)

    def stdinit(self):
        """Initialise with ``h.v_init`` at the next ``psolve`` unless ``finitialize`` is called first."""
        env = self._current("stdinit")
        env._pending_init = self.v_init

    @staticmethod
    def Vector(values=()):
        """A float64 numpy array (what miv's calls take in place of a hoc Vector)."""
        return np.array(values, dtype=np.float64)


h = _Hoc()


def configure_hoc(mechanisms_directory=None, **kwargs):
    """MiV's ``configure_hoc``: the folder of NEURON .mod files the next environment compiles (built-in mechanisms
    only when None), and optionally ``dt``, ``secondorder``, ``celsius``, ``v_init``. Returns ``h``."""
    if mechanisms_directory is not None:
        mechanisms_directory = _args.existing_dir("mechanisms_directory", mechanisms_directory)
    h._mechanisms = mechanisms_directory
    for k, v in kwargs.items():
        if k not in ("dt", "secondorder", "celsius", "v_init", "tstop"):
            raise ValueError(f"configure_hoc: unknown argument {k} (dt, secondorder, celsius, v_init, tstop)")
        setattr(h, k, v)
    return h
