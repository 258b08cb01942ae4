"""examples/python/rc_separation.py: miv's study runs the u / v pairs on 2 ranks; the state distances the
script recomputes in numpy from readouts.h5 equal the study's separation.csv exactly."""

import os

import numpy as np

from conftest import PYTHON, ROOT, check, one_rank


@one_rank
def test_rc_separation_py_recomputes_the_study(tmp_path):
    study = tmp_path / "study.yaml"
    study.write_text(
        f"experiment: {ROOT}/examples/rc-network/experiment.yaml\n"
        "stimulus_population: STIM\nslice_step: 10\ndistances: [0, 0.2]\ntrials: 1\nt_end: 20\nseed: 1\n"
        "readout: ReadoutElectrode\n"
    )
    out = tmp_path / "sep"
    stdout = check(["mpirun", "-n", "2", PYTHON, os.path.join(ROOT, "examples", "python", "rc_separation.py"),
                    "--study", str(study), "--out", str(out)], timeout=900)
    assert "d(u,v)=0.2: time-averaged state distance" in stdout, stdout
    rust = np.loadtxt(out / "separation.csv", delimiter=",", skiprows=1)
    py = np.loadtxt(out / "separation-py.csv", delimiter=",", skiprows=1)
    assert rust.shape == (2 * 201, 4)
    assert np.array_equal(rust, py)
    assert rust[rust[:, 0] == 0.2][:, 2].max() > 0, "different inputs give different states"
