"""MPI from Python: `mpirun -n 2 python script.py` with or without mpi4py imported first (rank and size agree
with mpi4py's COMM_WORLD), an exception on rank 1 aborts the job within seconds, and without mpirun a script
is one rank. These tests launch their own jobs, so they run in the one-rank pass."""

import os
import re
import time

from conftest import PYTHON, ROOT, check, one_rank, run


def script(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


@one_rank
def test_rank_and_size_agree_with_mpi4py_either_import_order(tmp_path):
    # Each rank writes its line to a file of its own: the ranks' stdout may interleave within a line.
    report = ("c = MPI.COMM_WORLD\nimport os, sys\n"
              "line = f'ranks {c.Get_rank()} {c.Get_size()} {miv.rank} {miv.size}'\n"
              "open(os.path.join(sys.argv[1], f'rank{c.Get_rank()}.txt'), 'w').write(line)\n")
    first = script(tmp_path, "first.py", "from mpi4py import MPI\nimport miv\n" + report)
    after = script(tmp_path, "after.py", "import miv\nfrom mpi4py import MPI\n" + report)
    for s in (first, after):
        for n, want in ((2, ["ranks 0 2 0 2", "ranks 1 2 1 2"]), (1, ["ranks 0 1 0 1"])):
            out_dir = tmp_path / f"{os.path.basename(s)}-{n}"
            out_dir.mkdir()
            launch = ["mpirun", "-n", "2"] if n == 2 else []
            out = check(launch + [PYTHON, s, str(out_dir)], timeout=120)
            found = sorted(p.read_text() for p in out_dir.iterdir())
            assert found == want, out


@one_rank
def test_ring_script_under_mpirun(tmp_path, ring):
    net, cli = ring
    s = script(tmp_path, "ring.py", f"""
import os, miv
net = {net!r}
env = miv.ExecutionEnvironment(seed=0)
env.load_cells(filepath=os.path.join(net, "cells.h5"), cell_types=os.path.join(net, "cell_types.yml"),
               templates=os.path.join(net, "templates"))
env.load_connections(filepath=os.path.join(net, "connections.h5"), synapses=os.path.join(net, "synapses.yml"),
                     synapse_mechanisms={{"AMPA": {{"mechanism": "Exp2Syn", "netcon": ["weight"]}}}})
env.add_event(0, 0, 5.005, [0.01])
env.finitialize(-65)
env.psolve(100)
s = env.gather_spikes()
if env.rank == 0:
    for g, t in zip(*s):
        print(f"spike {{g}} {{float(t)!r}}")
""")
    out = check(["mpirun", "-n", "2", PYTHON, s], timeout=120)
    got = [(int(l.split()[1]), float(l.split()[2])) for l in out.splitlines() if l.startswith("spike")]
    assert got == cli


@one_rank
def test_exception_on_rank_1_aborts_quickly(tmp_path):
    s = script(tmp_path, "boom.py", """
import time, miv
miv._miv.barrier()
if miv.rank == 1:
    raise RuntimeError("boom on rank 1")
miv._miv.barrier()   # rank 0 waits here for a rank that is gone
time.sleep(60)
""")
    t0 = time.monotonic()
    code, out, err = run(["mpirun", "-n", "2", PYTHON, s], timeout=60)
    elapsed = time.monotonic() - t0
    assert code != 0
    assert "RuntimeError: boom on rank 1" in err, err
    assert elapsed < 15, f"the job took {elapsed:.1f} s to stop"


@one_rank
def test_engine_error_on_one_rank_aborts(tmp_path, ring):
    net, _ = ring
    # gid 1 lives on rank 1 only: reading its state on rank 1 before finitialize fails there alone.
    s = script(tmp_path, "state.py", f"""
import os, miv
net = {net!r}
env = miv.ExecutionEnvironment(seed=0)
env.load_cells(filepath=os.path.join(net, "cells.h5"), cell_types=os.path.join(net, "cell_types.yml"),
               templates=os.path.join(net, "templates"))
if env.pc.gid_exists(1):
    env.state(1)
env.finitialize(-65)
env.psolve(1000)
""")
    t0 = time.monotonic()
    code, out, err = run(["mpirun", "-n", "2", PYTHON, s], timeout=60)
    assert code != 0 and "MivError" in err and "finitialize" in err, err
    assert time.monotonic() - t0 < 15


def test_examples_exist():
    assert os.path.isfile(os.path.join(ROOT, "examples", "python", "rc.py"))
