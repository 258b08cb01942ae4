"""Shared fixtures. The suite runs on one rank (`pytest python/tests`) and under `mpirun -n 2`: every rank runs
the same tests in the same order; files are made on rank 0 in one folder all ranks share (its name broadcast
with mpi4py). Tests that launch mpirun themselves run only on one rank."""

import os
import shutil
import subprocess
import sys
import tempfile

import pytest

import miv

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MIV_BIN = os.environ.get("MIV_BIN", os.path.join(ROOT, "target", "release", "miv"))
PYTHON = sys.executable

MPI_VARS = ("OMPI_", "PMIX_", "PMI_", "MPI_LOCALNRANKS", "HYDRA_", "PRTE_", "OPAL_")


def serial_env(**extra):
    """This process's environment without the launcher's variables, so a child runs as its own job."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(MPI_VARS)}
    for k in ("OMPI_ALLOW_RUN_AS_ROOT", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "OMPI_MCA_rmaps_base_oversubscribe"):
        env[k] = "1"
    env.update(extra)
    return env


def run(args, timeout=600, **kw):
    """Run a command as its own job; (returncode, stdout, stderr)."""
    p = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=serial_env(), **kw)
    return p.returncode, p.stdout, p.stderr


def check(args, timeout=600, **kw):
    code, out, err = run(args, timeout=timeout, **kw)
    assert code == 0, f"{' '.join(map(str, args))} failed ({code}):\n{out}\n{err}"
    return out


def bcast(value):
    if miv.size == 1:
        return value
    from mpi4py import MPI

    return MPI.COMM_WORLD.bcast(value, root=0)


def barrier():
    miv._miv.barrier()


one_rank = pytest.mark.skipif(miv.size > 1, reason="launches mpirun itself: runs in the one-rank pass")


@pytest.fixture(scope="session")
def scratch():
    d = tempfile.mkdtemp(prefix="miv-pytest-") if miv.rank == 0 else None
    d = bcast(d)
    yield d
    barrier()
    if miv.rank == 0:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def ring(scratch):
    """The 4-cell ring of `miv gen ring` and its `miv run` spikes [(gid, t)] (the CLI on one rank)."""
    net = os.path.join(scratch, "ring")
    if miv.rank == 0:
        assert os.path.exists(MIV_BIN), f"{MIV_BIN}: build the CLI first (cargo build --release) or set MIV_BIN"
        check([MIV_BIN, "gen", "ring", "--n", "4", "--out", net])
        check([MIV_BIN, "run", "-q", os.path.join(net, "experiment.yaml")])
    barrier()
    spikes = []
    with open(os.path.join(net, "spikes.csv")) as f:
        next(f)
        for line in f:
            g, t = line.strip().split(",")
            spikes.append((int(g), float(t)))
    return net, spikes


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under mpirun, a test failing on one rank would leave the others waiting in their next collective call:
    print the failure and abort the job instead."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and miv.size > 1:
        sys.stderr.write(f"[rank {miv.rank}] {item.nodeid} failed:\n{report.longreprtext}\n")
        sys.stderr.flush()
        miv._miv.abort(1)
