"""examples/python/rc.py (the seed's rc.py over miv) runs for 50 ms on 2 ranks and gives the LFP and spikes
of `miv run` on the seed's experiment, bit for bit at the precision the CLI writes (float32 in results.h5); the
case's interface/experiment/rc.py rewritten for miv gives the same readout.npy bit for bit."""

import os

import h5py
import numpy as np

from conftest import MIV_BIN, PYTHON, ROOT, check, one_rank

NET = os.path.join(ROOT, "examples", "rc-network")
LFP = "Local Field Potential ReadoutElectrode"


def cli_experiment(folder, t_end):
    """examples/rc-network/experiment.yaml with t_end changed and its outputs in `folder`."""
    with open(os.path.join(NET, "experiment.yaml")) as f:
        text = f.read()
    for key in ("network", "store", "cell_types", "synapses", "templates"):
        text = text.replace(f"\n{key}: ", f"\n{key}: {NET}/")
    text = text.replace("file: stimulus.txt", f"file: {NET}/stimulus.txt").replace("\nt_end: 500\n", f"\nt_end: {t_end}\n")
    path = os.path.join(folder, "experiment.yaml")
    with open(path, "w") as f:
        f.write(text)
    return path


@one_rank
def test_rc_py_50ms_on_2_ranks_equals_the_cli(tmp_path):
    exp = cli_experiment(str(tmp_path), 50)
    check(["mpirun", "-n", "2", MIV_BIN, "run", "-q", exp], timeout=900)
    out = str(tmp_path / "py")
    stdout = check(["mpirun", "-n", "2", PYTHON, os.path.join(ROOT, "examples", "python", "rc.py"),
                    "--t-end", "50", "--out", out], timeout=900)
    assert "LFP ReadoutElectrode: 501 samples to 50 ms" in stdout, stdout
    readout = np.load(os.path.join(out, "readout.npy"))
    assert readout.shape == (501, 2) and readout.dtype == np.float64
    with h5py.File(tmp_path / "results.h5", "r") as cli, h5py.File(os.path.join(out, "results.h5"), "r") as py:
        assert np.array_equal(readout[:, 0].astype(np.float32), cli[LFP]["t"][:])
        assert np.array_equal(readout[:, 1].astype(np.float32), cli[LFP]["v"][:])
        assert np.ptp(readout[:, 1]) > 0, "the LFP moves"
        assert np.array_equal(py[LFP]["v"][:], cli[LFP]["v"][:])
        total = 0
        for pop in ("STIM", "PYR", "PVBC", "OLM"):
            for d in ("Cell Index", "Attribute Pointer", "Attribute Value"):
                a = cli[f"Populations/{pop}/Spike Events/t/{d}"][:]
                b = py[f"Populations/{pop}/Spike Events/t/{d}"][:]
                assert np.array_equal(a, b), f"{pop} spikes {d} differ"
            total += len(cli[f"Populations/{pop}/Spike Events/t/Attribute Value"])
        assert total > 100, f"{total} spikes in 50 ms"
    # The case's own rc.py, rewritten for miv, gives the same readout.
    case_out = str(tmp_path / "case")
    check(["mpirun", "-n", "2", PYTHON, os.path.join(os.path.dirname(__file__), "case_rc_driver.py"), "50", case_out],
          timeout=900)
    assert np.array_equal(np.load(os.path.join(case_out, "readout.npy")), readout)
