"""Bad arguments raise ValueError or FileNotFoundError naming the argument; the engine's configuration errors
are ValueError with the file and key, as the CLI prints them."""

import os

import pytest

import miv


def env0():
    return miv.ExecutionEnvironment(seed=0)


def test_missing_files_name_the_argument(ring):
    net, _ = ring
    env = env0()
    with pytest.raises(FileNotFoundError, match=r"^filepath: .*nosuch\.h5: no such file"):
        env.load_cells(filepath=os.path.join(net, "nosuch.h5"), cell_types={}, templates=os.path.join(net, "templates"))
    with pytest.raises(FileNotFoundError, match=r"^cell_types: .*nosuch\.yml: no such file"):
        env.load_cells(filepath=os.path.join(net, "cells.h5"), cell_types=os.path.join(net, "nosuch.yml"),
                       templates=os.path.join(net, "templates"))
    with pytest.raises(FileNotFoundError, match=r"^templates: .*nodir: no such directory"):
        env.load_cells(filepath=os.path.join(net, "cells.h5"), cell_types=os.path.join(net, "cell_types.yml"),
                       templates=os.path.join(net, "nodir"))
    with pytest.raises(FileNotFoundError, match=r"^network: "):
        miv.build(os.path.join(net, "nosuch.yaml"))
    with pytest.raises(FileNotFoundError, match=r"^mechanisms: "):
        miv.ExecutionEnvironment(mechanisms=os.path.join(net, "nodir"))


def test_bad_values_name_the_argument(ring):
    net, _ = ring
    with pytest.raises(ValueError, match=r"^seed: "):
        miv.ExecutionEnvironment(seed=-1)
    with pytest.raises(ValueError, match=r"^dt: must be > 0"):
        miv.ExecutionEnvironment(dt=0)
    with pytest.raises(ValueError, match=r"^method: "):
        miv.ExecutionEnvironment(method="rk4")
    with pytest.raises(ValueError, match=r"^h.secondorder: "):
        miv.h.secondorder = 1
    env = env0()
    with pytest.raises(ValueError, match=r"^load_connections: call load_cells first"):
        env.load_connections(filepath=os.path.join(net, "connections.h5"), synapses=os.path.join(net, "synapses.yml"))
    env.load_cells(filepath=os.path.join(net, "cells.h5"), cell_types=os.path.join(net, "cell_types.yml"),
                   templates=os.path.join(net, "templates"))
    with pytest.raises(ValueError, match=r"^gid: expected a gid"):
        env.play("x", [1.0])
    with pytest.raises(ValueError, match=r"^times: expected numbers"):
        env.play(0, ["a"])
    with pytest.raises(ValueError, match=r"^synapses: required"):
        env.load_connections(filepath=os.path.join(net, "connections.h5"))
    with pytest.raises(ValueError, match=r"^velocity: must be > 0"):
        env.load_connections(filepath=os.path.join(net, "connections.h5"), synapses={}, velocity=0)
    with pytest.raises(ValueError, match=r"^pos: "):
        miv.LFP("E", env, pos=[1, 2])
    with pytest.raises(ValueError, match=r"^maxEDist: must be > 0"):
        miv.LFP("E", env.pc, pos=[0, 0, 0], maxEDist=-1)
    with pytest.raises(ValueError, match=r"^pop_gid_dict\['BS'\]: "):
        miv.LFP("E", env.pc, pop_gid_dict={"BS": set()} if env.cells["BS"] else {"BS": {99}}, pos=[0, 0, 0])


def test_engine_errors_name_file_and_key(ring):
    net, _ = ring
    env = env0()
    # A key the cell type does not have: the engine's message names the argument and the key.
    with pytest.raises(ValueError, match=r"cell_types.*BS.*templat"):
        env.load_cells(filepath=os.path.join(net, "cells.h5"), cell_types={"BS": {"templat": "BallStick"}},
                       templates=os.path.join(net, "templates"))
    env = env0()
    # A population with no cell type: names the cells file.
    with pytest.raises(miv.MivError, match=r"cells\.h5: population BS has no entry in cell_types"):
        env.load_cells(filepath=os.path.join(net, "cells.h5"), cell_types={"OTHER": {"template": "BallStick"}},
                       templates=os.path.join(net, "templates"))
    # The same message as the CLI prints for the same bad file.
    bad = os.path.join(net, "bad_types.yml")
    if miv.rank == 0:
        with open(bad, "w") as f:
            f.write("BS:\n  template: BallStick\n  nonsense: 1\n")
    miv._miv.barrier()
    env = env0()
    with pytest.raises(ValueError) as e:
        env.load_cells(filepath=os.path.join(net, "cells.h5"), cell_types=bad, templates=os.path.join(net, "templates"))
    assert "bad_types.yml" in str(e.value) and "nonsense" in str(e.value)
    # psolve before finitialize.
    env = env0()
    env.load_cells(filepath=os.path.join(net, "cells.h5"), cell_types=os.path.join(net, "cell_types.yml"),
                   templates=os.path.join(net, "templates"))
    with pytest.raises(miv.MivError, match="psolve before finitialize"):
        env.psolve(1.0)
