"""MiV's ``ExecutionEnvironment`` and ``LFP`` over ``miv_engine::ExecutionEnvironment`` (docs/python.md).

Calls marked *collective* must be made on every rank in the same order, as with NEURON's ``pc`` calls."""

import json

import numpy as np

from . import _args, _miv


def _u64(b):
    return np.frombuffer(b, dtype=np.uint64)


def _f64(b):
    return np.frombuffer(b, dtype=np.float64)


_METHODS = {0: "backward_euler", 2: "crank_nicolson"}


class Cell:
    """A cell of this rank (MiV's ``env.cells[pop][gid]``): its gid, population and, for a VecStim cell,
    ``play``."""

    __slots__ = ("_env", "gid", "population", "is_artificial")

    def __init__(self, env, gid, population, is_artificial):
        self._env = env
        self.gid = gid
        self.population = population
        self.is_artificial = is_artificial

    def play(self, times):
        """NEURON's ``VecStim.play(vector)``: the spike train (list, numpy array or ``h.Vector``, ms, sorted)
        played from the next ``finitialize``/``reset`` on."""
        if not self.is_artificial:
            raise ValueError(f"gid {self.gid} ({self.population}) is not a VecStim cell: only artificial cells play trains")
        self._env.play(self.gid, times)

    def record(self, variable="v", section=0, x=0.5, every_steps=1):
        return self._env.record(self.gid, section=section, x=x, variable=variable, every_steps=every_steps)

    def state(self, variable="v", section=0, x=0.5):
        return self._env.state(self.gid, section=section, x=x, variable=variable)

    def set_state(self, value, variable="v", section=0, x=0.5):
        self._env.set_state(self.gid, value, section=section, x=x, variable=variable)

    def __repr__(self):
        kind = "VecStim" if self.is_artificial else "cell"
        return f"<miv {kind} {self.population} gid {self.gid}>"


class ParallelContext:
    """The few calls of NEURON's ``pc`` that MiV scripts make on ``env.pc``."""

    def __init__(self, env):
        self._env = env

    def id(self):
        return self._env.rank

    def nhost(self):
        return self._env.size

    def gid_exists(self, gid):
        """Whether this rank owns ``gid``."""
        return self._env._env.owns(_args.gid("gid", gid))

    def psolve(self, t_stop):
        """Collective: advance to ``t_stop`` ms."""
        self._env.psolve(t_stop)

    def timeout(self, seconds=0.0):
        """Accepted for NEURON scripts; miv never hangs on a failed rank (it aborts the job)."""
        return 0.0

    def barrier(self):
        _miv.barrier()

    def set_maxstep(self, maxstep):
        """Returns the global minimum delay once the network is initialised (NEURON's result)."""
        return self._env._env.min_delay()


class ExecutionEnvironment:
    """MiV's ``ExecutionEnvironment(seed=...)``.

    ``dt`` and ``method`` default to ``miv.h.dt`` and ``miv.h.secondorder`` (0.025 ms, backward Euler),
    ``mechanisms`` to ``configure_hoc``'s folder (built-in mechanisms only when none). ``threads`` worker
    threads per rank; ``comm``, if given, must be (a duplicate of) mpi4py's ``COMM_WORLD``."""

    def __init__(
        self,
        seed=0,
        dt=None,
        method=None,
        threads=1,
        max_step=10.0,
        mechanisms=None,
        celsius=None,
        netrec_state_adjust=False,
        comm=None,
    ):
        from .hoc import h

        if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed: expected an integer >= 0, got {seed!r}")
        dt = _args.number("dt", h.dt if dt is None else dt, positive=True)
        if method is None:
            method = _METHODS[h.secondorder]
        if method not in ("backward_euler", "crank_nicolson"):
            raise ValueError(f"method: expected 'backward_euler' or 'crank_nicolson', got {method!r}")
        if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 0:
            raise ValueError(f"threads: expected an integer >= 0 (0: every core), got {threads!r}")
        max_step = _args.number("max_step", max_step, positive=True)
        if mechanisms is None:
            mechanisms = h._mechanisms
        if mechanisms is not None:
            mechanisms = _args.existing_dir("mechanisms", mechanisms)
        if comm is not None:
            csize = comm.Get_size() if hasattr(comm, "Get_size") else getattr(comm, "size", None)
            crank = comm.Get_rank() if hasattr(comm, "Get_rank") else getattr(comm, "rank", None)
            if (crank, csize) != _miv.rank_size():
                raise ValueError(f"comm: miv runs on MPI_COMM_WORLD (rank {_miv.rank_size()[0]} of {_miv.rank_size()[1]}); got rank {crank} of {csize}")
        self.seed = int(seed)
        self.rank, self.size = _miv.rank_size()
        self.comm = comm
        self._env = _miv.Env(int(seed), dt, method, int(threads), max_step, mechanisms, bool(netrec_state_adjust))
        if celsius is not None:
            self._env.set_celsius(_args.number("celsius", celsius))
        self.pc = ParallelContext(self)
        self.cells = {}
        self.artificial_cells = {}
        self._lfps = []
        self._loaded = False
        self._initialised = False
        self._pending_init = None
        self._t_stop = 0.0
        h._env = self

    # --- loading ---

    def load_cells(self, filepath, cell_types, templates="templates", io_size=0, partitioning="round-robin",
                   clip_synapse_locations=True):
        """Collective: read this rank's cells from ``filepath`` (cells.h5) and build them from ``cell_types``
        (a path, a YAML string or a dict) and the templates folder."""
        path = _args.existing_file("filepath", filepath)
        text, origin = _args.config_text("cell_types", cell_types)
        templates = _args.existing_dir("templates", templates)
        if partitioning not in ("round-robin", "weighted"):
            raise ValueError(f"partitioning: expected 'round-robin' or 'weighted', got {partitioning!r}")
        if self._loaded:
            raise ValueError("load_cells: cells are loaded already (one network per environment)")
        self._env.load_cells(path, text, origin, templates, partitioning, int(io_size), bool(clip_synapse_locations))
        self._loaded = True
        local = set(_u64(self._env.local_gids()).tolist())
        for pop, start, count in self._env.populations():
            art = set(_u64(self._env.artificial_cells(pop)).tolist())
            gids = sorted(g for g in local if start <= g < start + count)
            self.cells[pop] = {g: Cell(self, g, pop, g in art) for g in gids}
            self.artificial_cells[pop] = {g: c for g, c in self.cells[pop].items() if c.is_artificial}

    def load_connections(self, filepath, cell_filepath=None, synapses=None, synapse_mechanisms=None,
                         velocity=250.0, min_delay=None, io_size=0):
        """Collective: read the edges onto this rank's cells from ``filepath`` (connections.h5) and make their
        synapses and connections as ``synapses`` (path, YAML string or dict) says. ``synapse_mechanisms``:
        mechanism and weight rule per synapse label (MiV's defaults when None); delays are
        max(distance / velocity, min_delay), min_delay = 2 dt when None."""
        path = _args.existing_file("filepath", filepath)
        if cell_filepath is not None:
            _args.existing_file("cell_filepath", cell_filepath)
        if synapses is None:
            raise ValueError("synapses: required (a path, a YAML string or a dict)")
        text, origin = _args.config_text("synapses", synapses)
        rules = None
        if synapse_mechanisms is not None:
            rules, _ = _args.config_text("synapse_mechanisms", synapse_mechanisms)
        velocity = _args.number("velocity", velocity, positive=True)
        if min_delay is not None:
            min_delay = _args.number("min_delay", min_delay, positive=True)
        if not self._loaded:
            raise ValueError("load_connections: call load_cells first")
        self._env.load_connections(path, text, origin, rules, velocity, min_delay, int(io_size))

    @property
    def populations(self):
        """{population: (first gid, count)} of the cells file."""
        return {p: (s, n) for p, s, n in self._env.populations()}

    # --- stimulus, probes ---

    def play(self, gid, times):
        """Play a spike train from VecStim cell ``gid`` (on its owner) from the next finitialize/reset on."""
        gid = _args.gid("gid", gid)
        a = _args.float_array("times", times)
        self._env.play(gid, a.tobytes())

    def add_event(self, gid, target, t, weights):
        """NEURON's ``NetCon(None, syn).event(t)``: one event to target ``target`` of ``gid`` at ``t`` ms, from
        every following finitialize/reset on (a no-op off the owner)."""
        w = [float(x) for x in np.atleast_1d(weights)]
        self._env.add_event(_args.gid("gid", gid), int(target), _args.number("t", t, minimum=0.0), w)

    def clear_events(self):
        self._env.clear_events()

    def record(self, gid, section=0, x=0.5, variable="v", every_steps=1):
        """Record ``variable`` (v, i_membrane, MECH.VAR, TARGET.VAR) at section(x) of ``gid`` every
        ``every_steps`` steps from the next finitialize/reset on; returns the trace's label."""
        if not 0.0 <= float(x) <= 1.0:
            raise ValueError(f"x: expected a location in [0, 1], got {x!r}")
        if int(every_steps) < 1:
            raise ValueError(f"every_steps: must be >= 1, got {every_steps!r}")
        return self._env.record(_args.gid("gid", gid), int(section), float(x), str(variable), int(every_steps))

    def clear_probes(self):
        self._env.clear_probes()

    # --- running ---

    def finitialize(self, v_init=_miv.DEFAULT_V_INIT):
        """Collective: NEURON's ``h.finitialize(v_init)``; builds the network the first time, restarts it after."""
        self._env.finitialize(_args.number("v_init", v_init))
        self._initialised = True
        self._pending_init = None
        self._after_run()

    def psolve(self, t_stop):
        """Collective: advance to ``t_stop`` ms (call again with a later time to go on)."""
        t_stop = _args.number("t_stop", t_stop, minimum=0.0)
        if not self._initialised and self._pending_init is not None:
            self.finitialize(self._pending_init)
        self._env.psolve(t_stop)
        self._t_stop = t_stop
        self._after_run()

    def reset(self):
        """Collective: back to t = 0 and the initial state, keeping trains, events, probes and weights."""
        self._env.reset()
        self._after_run()

    def _after_run(self):
        # The LFP sum is collective: gather it here, where every rank is, so that `lfp.meanlfp` is a plain
        # attribute read on root (MiV scripts read it under `if env.rank == 0`).
        for lfp in self._lfps:
            lfp._refresh()

    @property
    def t(self):
        return self._env.time()

    def min_delay(self):
        return self._env.min_delay()

    # --- state ---

    def state(self, gid, section=0, x=0.5, variable="v"):
        """``variable`` at section(x) of ``gid``, on the rank owning it, after finitialize."""
        return self._env.state(_args.gid("gid", gid), int(section), float(x), str(variable))

    def set_state(self, gid, value, section=0, x=0.5, variable="v"):
        self._env.set_state(_args.gid("gid", gid), int(section), float(x), str(variable), _args.number("value", value))

    def set_cell_voltage(self, gid, v):
        self._env.set_cell_voltage(_args.gid("gid", gid), _args.number("v", v))

    def netcon_weights(self, source, target):
        """Weight vectors of the connections source -> target (on the target's owner), in creation order."""
        return [np.array(w) for w in self._env.netcon_weights(_args.gid("source", source), _args.gid("target", target))]

    def set_netcon_weights(self, source, target, k, weights):
        """NEURON's ``nc.weight[0] = w`` on connection ``k`` source -> target; a no-op off the target's owner."""
        w = [float(x) for x in np.atleast_1d(weights)]
        target = _args.gid("target", target)
        if self._env.owns(target):
            self._env.set_netcon_weights(_args.gid("source", source), target, int(k), w)

    # --- results (collective; values on rank 0, None elsewhere) ---

    def gather_spikes(self):
        """Collective: every spike so far as (gid uint64 array, t float64 array) sorted by (t, gid) on rank 0;
        None elsewhere."""
        r = self._env.gather_spikes()
        if r is None:
            return None
        return _u64(r[0]), _f64(r[1])

    def gather_traces(self):
        """Collective: {label: float64 array} of every probe on rank 0; None elsewhere."""
        r = self._env.gather_traces()
        if r is None:
            return None
        return {label: _f64(b) for label, b in r}

    def write_output(self, path, t_stop=None, populations=None, results_id=None):
        """Collective: the results file (NeuroH5 spikes per population, LFP) on rank 0, readable with h5py."""
        path = _args.as_path("path", path)
        t_stop = self._t_stop if t_stop is None else _args.number("t_stop", t_stop)
        self._env.write_outputs(path, t_stop, None if populations is None else list(populations), results_id)

    def local_counts(self):
        """(cells, compartments, connections) of this rank."""
        return tuple(self._env.local_counts())

    def mechanism_counts(self):
        """Instances of each mechanism type on this rank's cells, ``{name: count}`` (after ``finitialize``)."""
        return dict(self._env.mechanism_counts())


class LFP:
    """MiV's ``LFP(label, pc, pop_gid_dict, pos, rho, fdst, maxEDist, dt_lfp, seed)``: an extracellular
    electrode at ``pos`` (um) summing the membrane currents of the cells within ``maxEDist``. Collective (create
    it on every rank, after load_connections, before finitialize). ``t`` and ``meanlfp`` are numpy arrays on
    rank 0 after each ``psolve`` (None elsewhere).

    ``env`` is the environment or its ``env.pc``. ``pop_gid_dict``, as rc.py passes it, must be every cell
    built from a template: the electrode always takes all of them (a subset is an error)."""

    def __init__(self, label, env, pop_gid_dict=None, pos=(0.0, 0.0, 0.0), rho=333.0, fdst=0.1, maxEDist=100.0,
                 dt_lfp=0.5, seed=1, miv_compat=False):
        if isinstance(env, ParallelContext):
            env = env._env
        if not isinstance(env, ExecutionEnvironment):
            raise ValueError(f"env: expected a miv.ExecutionEnvironment or its .pc, got {type(env).__name__}")
        if not isinstance(label, str) or not label:
            raise ValueError(f"label: expected a non-empty string, got {label!r}")
        pos = np.asarray(pos, dtype=np.float64)
        if pos.shape != (3,) or not np.all(np.isfinite(pos)):
            raise ValueError(f"pos: expected [x, y, z] in um, got {pos!r}")
        if pop_gid_dict is not None:
            self._check_pop_gid_dict(env, pop_gid_dict)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed: expected an integer >= 0, got {seed!r}")
        config = {
            "label": label,
            "position": pos.tolist(),
            "rho": _args.number("rho", rho, positive=True),
            "fdst": _args.number("fdst", fdst, positive=True),
            "max_e_dist": _args.number("maxEDist", maxEDist, positive=True),
            "dt_lfp": _args.number("dt_lfp", dt_lfp, positive=True),
            "seed": int(seed),
            "miv_compat": bool(miv_compat),
        }
        self.label = label
        self.env = env
        self.t = None
        self.meanlfp = None
        self._index = env._env.add_lfp(json.dumps(config))
        env._lfps.append(self)

    @staticmethod
    def _check_pop_gid_dict(env, pop_gid_dict):
        if not isinstance(pop_gid_dict, dict):
            raise ValueError(f"pop_gid_dict: expected {{population: gids}}, got {type(pop_gid_dict).__name__}")
        for pop, gids in pop_gid_dict.items():
            if pop not in env.cells:
                raise ValueError(f"pop_gid_dict: {pop!r} is not a population of the loaded cells ({', '.join(env.cells)})")
            cable = {g for g, c in env.cells[pop].items() if not c.is_artificial}
            if set(int(g) for g in gids) != cable:
                raise ValueError(
                    f"pop_gid_dict[{pop!r}]: the electrode takes every local cell built from a template "
                    f"({len(cable)} here); a subset is not supported"
                )

    def _refresh(self):
        r = self.env._env.gather_lfp(self._index)
        if r is not None:
            self.t, self.meanlfp = _f64(r[0]), _f64(r[1])


__all__ = ["Cell", "ExecutionEnvironment", "LFP", "ParallelContext"]
