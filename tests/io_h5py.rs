//! Files written by miv read with h5py: the DOMAIN A.7 worked example checked name by name, dtype by dtype
//! and value by value against the spec (plus /H5Types against the same table made the way MiV's
//! create_neural_h5 makes it), and results files read the way MiV's analysis side reads them.

mod common;
#[path = "../io/tests/common/mod.rs"]
mod io_common;

use common::{repo_root, scratch};
use io_common::*;
use miv::io::output::{write_results, LfpTrace};
use miv::io::{H5Types, PopulationRanges, SpikeOutput};

fn script(name: &str) -> String {
    std::fs::read_to_string(repo_root().join("tests/io_py").join(name)).expect("script")
}

#[test]
fn a7_example_as_h5py_sees_it() {
    no_file_locking();
    let dir = scratch("io_h5py_a7");
    let path = dir.join("a7.h5");
    write_a7(&path);
    let theirs = dir.join("h5py_types.h5");
    let out = run_python(&script("check_a7.py"), &[path.to_str().unwrap(), theirs.to_str().unwrap()]);
    assert_eq!(out.trim(), "ok");
    // The /H5Types h5py made the way MiV makes it reads back as the same table.
    let comm = miv::partition::SerialComm;
    let f = miv::io::NeuroH5File::open(&theirs, &comm).unwrap();
    assert_eq!(f.read_h5types().unwrap(), a7_types());
}

/// Spike trains and LFP traces as `spikedata.read_spike_events` and `plotting.plot_lfp` read them: per
/// population the `Spike Events` namespace (Cell Index + population start = gid), `t` float32 per spike,
/// `Trial Index` uint8 per spike, `Trial Duration` float32 per trial, `artificial` uint8; LFP groups with
/// float32 `t` and `v`.
#[test]
fn results_file_reads_like_miv_analysis_expects() {
    no_file_locking();
    let dir = scratch("io_h5py_results");
    let path = dir.join("results.h5");
    let types = H5Types {
        populations: PopulationRanges::from_counts(&[("STIM", 0, 4), ("PYR", 100, 3)]).unwrap(),
        projections: vec![],
    };
    let mut s = SpikeOutput::new(None, vec![150.0, 150.0]);
    let spikes: &[(u64, f32, u8)] =
        &[(1, 12.5, 0), (1, 40.25, 0), (1, 3.0, 1), (5, 99.5, 1), (6, 0.125, 0), (3, 7.0, 0)];
    for &(g, t, tr) in spikes {
        s.add(g, t, tr);
    }
    s.set_artificial(1, true);
    s.set_artificial(3, true);
    let lfp = LfpTrace { label: "Electrode 0".into(), t: vec![0.0, 0.1, 0.2], v: vec![-0.5, 0.25, 1.0] };
    let written = write_results(&path, &types, &s, std::slice::from_ref(&lfp), None).unwrap();
    assert_eq!(written, path);
    assert!(!miv::io::file::partial_path(&path).exists());
    let expected = serde_json::json!({
        "spikes": spikes.iter().map(|&(g, t, tr)| serde_json::json!([g, t, tr])).collect::<Vec<_>>(),
        "artificial": [1, 3],
        "durations": [150.0, 150.0],
        "lfp": {"name": "Local Field Potential Electrode 0", "t": lfp.t, "v": lfp.v},
    });
    let check = r#"
import json, sys
import h5py, numpy as np
path, want = sys.argv[1], json.loads(sys.argv[2])
f = h5py.File(path, "r")
labels = h5py.check_enum_dtype(f["/H5Types/Population labels"].dtype)
names = {v: k for k, v in labels.items()}
start = {names[int(r["Population"])]: int(r["Start"]) for r in f["/H5Types/Populations"][()]}
got, art = [], []
for pop in f["Populations"]:
    ns = f["Populations"][pop]["Spike Events"]
    def cells(attr, dtype):
        g = ns[attr]
        assert g["Attribute Value"].dtype == np.dtype(dtype), (attr, g["Attribute Value"].dtype)
        idx, ptr, val = g["Cell Index"][()], g["Attribute Pointer"][()], g["Attribute Value"][()]
        return {int(i) + start[pop]: val[ptr[k]:ptr[k + 1]] for k, i in enumerate(idx)}
    t, ti, td, a = cells("t", "float32"), cells("Trial Index", "uint8"), cells("Trial Duration", "float32"), cells("artificial", "uint8")
    assert t.keys() == ti.keys() == td.keys() == a.keys()
    for gid in t:
        assert len(t[gid]) == len(ti[gid])
        assert td[gid].tolist() == want["durations"]
        if a[gid][0] > 0:
            art.append(gid)
        got += [[gid, float(x), int(k)] for x, k in zip(t[gid], ti[gid])]
want_spikes = sorted((g, t, k) for g, t, k in want["spikes"])
assert sorted(map(tuple, got)) == want_spikes, (sorted(got), want_spikes)
assert sorted(art) == want["artificial"]
lfp = f[want["lfp"]["name"]]
assert lfp["t"].dtype == np.float32 and lfp["v"].dtype == np.float32
assert lfp["t"][()].tolist() == want["lfp"]["t"] and lfp["v"][()].tolist() == want["lfp"]["v"]
print("ok")
"#;
    let out = run_python(check, &[path.to_str().unwrap(), &expected.to_string()]);
    assert_eq!(out.trim(), "ok");
}

/// The section contraction of MiV's three cells against a second, iterative implementation written in
/// Python from DOMAIN A.4 (`tests/io_py/contract.py`): same sections (point lists) and section edges.
#[test]
fn section_contraction_matches_a_second_implementation() {
    no_file_locking();
    for cell in ["PYR", "PVBC", "OLM"] {
        let swc = common::morphology_dir().join(format!("{cell}.swc"));
        let t = miv::io::read_swc(&swc).unwrap();
        let out = run_python(&script("contract.py"), &[swc.to_str().unwrap()]);
        let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
        let sections: Vec<Vec<u32>> = serde_json::from_value(doc["sections"].clone()).unwrap();
        let edges: Vec<(u16, u16)> = serde_json::from_value(doc["edges"].clone()).unwrap();
        assert_eq!(sections, t.sections, "{cell} sections");
        assert_eq!(edges, t.src.iter().copied().zip(t.dst.iter().copied()).collect::<Vec<_>>(), "{cell} section edges");
    }
}
