//! `miv build` on the seed's rc network (examples/rc-network): populations and gid ranges, somata in their
//! layer boxes, arc distances, synapse counts against densities × dendritic length, connection counts against
//! proportions, and the files read back by the io crate and by h5py.

mod common;
#[path = "common/jobs.rs"]
mod jobs_common;

use std::collections::BTreeMap;
use std::path::Path;

use common::*;
use jobs_common::*;
use miv::config::{NetworkConfig, SwcType, SynapseType};
use miv::io::names::*;
use miv::io::Selection;
use miv::jobs::algo::morphology::Morphology;

fn build_example() -> (NetworkConfig, std::path::PathBuf, std::path::PathBuf) {
    let dir = scratch("jobs_build_rc");
    let net = example_dir().join("network.yaml");
    let store = dir.join("store");
    let o =
        miv(&["build", net.to_str().unwrap(), "--store", store.to_str().unwrap()]).expect_ok("miv build rc-network");
    let (cells, conns) = built_files(&o.stdout);
    (NetworkConfig::load(&net).unwrap(), cells, conns)
}

#[test]
fn rc_network_builds_as_configured() {
    let (net, cells_path, conns_path) = build_example();
    let cells = open(&cells_path);
    let types = cells.read_h5types().unwrap();

    // DOMAIN A.2: STIM 0–63, PYR 64–286, PVBC 287–379, OLM 380–400.
    let ranges: Vec<(String, u64, u64)> =
        types.populations.iter().map(|p| (p.name.clone(), p.start, p.count)).collect();
    assert_eq!(
        ranges,
        [("STIM".into(), 0, 64), ("PYR".into(), 64, 223), ("PVBC".into(), 287, 93), ("OLM".into(), 380, 21)]
    );
    let mut valid = types.projections.clone();
    valid.sort();
    let mut expect: Vec<(String, String)> =
        net.synapses.iter().flat_map(|(post, pres)| pres.keys().map(move |pre| (pre.clone(), post.clone()))).collect();
    expect.sort();
    assert_eq!(valid, expect);

    for pop in types.populations.iter() {
        let c = read_all(&cells, &pop.name, GENERATED_COORDINATES);
        assert_eq!(c.gids(), pop.range().collect::<Vec<_>>(), "{}: one soma per gid", pop.name);
        let d = read_all(&cells, &pop.name, ARC_DISTANCES);
        let mut per_layer: BTreeMap<String, u32> = BTreeMap::new();
        let mut last_u = f64::NEG_INFINITY;
        for gid in pop.range() {
            let (u, v, l) = (scalar(&c, U_COORD, gid), scalar(&c, V_COORD, gid), scalar(&c, L_COORD, gid));
            assert_eq!(
                [scalar(&c, "X Coordinate", gid), scalar(&c, "Y Coordinate", gid), scalar(&c, "Z Coordinate", gid)],
                [u, v, l]
            );
            assert!(u >= last_u, "{}: gids are ordered by U", pop.name);
            last_u = u;
            // Inside a layer box where the population has cells (boxes share faces: count the first match).
            let layer = net.cell_distributions[&pop.name]
                .iter()
                .filter(|(_, &n)| n > 0)
                .map(|(layer, _)| layer)
                .find(|layer| net.layer_extents[*layer].contains([u, v, l], 1e-4))
                .unwrap_or_else(|| panic!("{} gid {gid} at ({u}, {v}, {l}) is in none of its layers", pop.name));
            *per_layer.entry(layer.clone()).or_default() += 1;
            // Origin: median of the volume widened by 0.01 = (100, 100).
            assert!((scalar(&d, U_DISTANCE, gid) - (u - 100.0)).abs() < 1e-4);
            assert!((scalar(&d, V_DISTANCE, gid) - (v - 100.0)).abs() < 1e-4);
        }
        let configured: BTreeMap<String, u32> =
            net.cell_distributions[&pop.name].iter().filter(|(_, &n)| n > 0).map(|(k, &n)| (k.clone(), n)).collect();
        assert_eq!(per_layer, configured, "{}: cells per layer", pop.name);
        let attrs: BTreeMap<String, f64> =
            cells.namespace_attributes(&pop.name, ARC_DISTANCES).unwrap().into_iter().collect();
        assert!(
            (attrs[REFERENCE_U_MIN] + 100.01).abs() < 1e-9 && (attrs[REFERENCE_V_MAX] - 100.01).abs() < 1e-9,
            "{attrs:?}"
        );
    }

    let conns = open(&conns_path);
    for pop in ["PYR", "PVBC", "OLM"] {
        synapse_counts_follow_densities(&net, &cells, pop);
        connections_follow_proportions(&net, &cells, &conns, pop);
    }
    readable_by_h5py(&cells_path, &conns_path);
    drop((cells, conns));
    discard_scratch("jobs_build_rc");
}

/// Observed synapses per (section type, synapse type, layer) within 3 standard deviations of the expected count:
/// per segment, the mean of the positive-truncated density normal times the segment length, summed over
/// segments and cells. The variance adds the Poisson count and the per-segment density spread; the first
/// synapse of a section is forced into its first segment (MiV), which adds at most one synapse per section
/// (about the chance of an empty first segment when that segment is dense).
fn synapse_counts_follow_densities(net: &NetworkConfig, cells: &miv::io::NeuroH5File, pop: &str) {
    let p = cells.population(pop).unwrap();
    let trees = cells.read_trees(pop, &Selection::All).unwrap();
    assert_eq!(trees.len() as u64, p.count);
    let tree = trees.values().next().unwrap();
    assert!(trees.values().all(|t| t == tree), "{pop}: the forest copies one tree to every cell");
    let ct = &net.cell_types[pop];
    let m = Morphology::new(tree, ct.segment_rule()).unwrap();
    let n = p.count as f64;
    let mut expected: BTreeMap<(u8, u8, i8), (f64, f64, f64)> = BTreeMap::new();
    for (swc, by_type) in &ct.synapses.density {
        for (syn, by_layer) in by_type {
            for s in m.sections_of(*swc) {
                let sec = &m.sections[s];
                let seg = sec.length / sec.nseg as f64;
                for k in 0..sec.nseg {
                    let layer = sec.layer_at(sec.segment_x(k));
                    let name = net.layer_definitions.iter().find(|(_, &i)| i == layer).map(|(n, _)| n.as_str());
                    let Some(d) = name.and_then(|nm| by_layer.get(nm)).or(by_layer.get("default")) else { continue };
                    let (mean, var) = positive_normal_moments(d.mean, d.variance);
                    let e = expected.entry((swc.code(), syn.code(), layer)).or_default();
                    e.0 += n * mean * seg;
                    e.1 += n * (mean * seg + var * seg * seg);
                    if k == 0 {
                        // At most one extra synapse per section; about the chance of none in a dense segment.
                        e.2 += n * if mean * seg < 5.0 { 1.0 } else { (-mean * seg).exp() };
                    }
                }
            }
        }
    }
    let syn = read_all(cells, pop, SYNAPSE_ATTRIBUTES);
    let mut observed: BTreeMap<(u8, u8, i8), f64> = BTreeMap::new();
    for gid in p.range() {
        let (s, t, l) = (
            syn.get::<u8>(SWC_TYPES, gid).unwrap(),
            syn.get::<u8>(SYN_TYPES, gid).unwrap(),
            syn.get::<i8>(SYN_LAYERS, gid).unwrap(),
        );
        let ids = syn.get::<u32>(SYN_IDS, gid).unwrap();
        assert_eq!(ids, (0..ids.len() as u32).collect::<Vec<_>>().as_slice(), "{pop} gid {gid}: syn_ids 0..n");
        for i in 0..s.len() {
            *observed.entry((s[i], t[i], l[i])).or_default() += 1.0;
        }
    }
    for key in observed.keys() {
        assert!(expected.contains_key(key), "{pop}: synapses {key:?} where no density is configured");
    }
    let mut checked = 0;
    for (key, (mean, var, first)) in &expected {
        let obs = observed.get(key).copied().unwrap_or(0.0);
        if *mean < 100.0 {
            continue;
        }
        let tol = 3.0 * var.sqrt() + first;
        assert!((obs - mean).abs() <= tol, "{pop} {key:?}: {obs} synapses, expected {mean:.0} ± {tol:.0}");
        checked += 1;
    }
    assert!(checked >= 2, "{pop}: only {checked} groups large enough to compare");
}

/// Every synapse gets exactly one edge; per (synapse type, section type, layer) the share of each presynaptic
/// population is within 3 binomial standard deviations of its proportion; edge distances are |ΔU| + |ΔV| and
/// within the axon extent.
fn connections_follow_proportions(
    net: &NetworkConfig,
    cells: &miv::io::NeuroH5File,
    conns: &miv::io::NeuroH5File,
    post: &str,
) {
    let p = cells.population(post).unwrap();
    let syn = read_all(cells, post, SYNAPSE_ATTRIBUTES);
    let dist = |pop: &str| read_all(cells, pop, ARC_DISTANCES);
    let dpost = dist(post);
    // (gid, syn_id) -> presynaptic population
    let mut owner: BTreeMap<(u64, u32), String> = BTreeMap::new();
    for pre in net.synapses[post].keys() {
        let e = conns.read_projection(pre, post, &[SYNAPSES, CONNECTIONS], &Selection::All).unwrap();
        let ids = e.attr::<u32>(SYNAPSES, SYN_ID).unwrap();
        let dd = e.attr::<f32>(CONNECTIONS, DISTANCE).unwrap();
        let dpre = dist(pre);
        for (dst, range) in e.iter() {
            let sources = e.sources_of(dst).unwrap();
            assert!(sources.windows(2).all(|w| w[0] <= w[1]), "sources sorted per destination");
            for (k, i) in range.enumerate() {
                assert!(
                    owner.insert((dst, ids[i]), pre.clone()).is_none(),
                    "{post} gid {dst} synapse {} has two edges",
                    ids[i]
                );
                let du = (scalar(&dpost, U_DISTANCE, dst) - scalar(&dpre, U_DISTANCE, sources[k])).abs();
                let dv = (scalar(&dpost, V_DISTANCE, dst) - scalar(&dpre, V_DISTANCE, sources[k])).abs();
                assert!(du < 100.0 && dv < 100.0, "{pre} -> {post}: source outside the 200x200 axon extent");
                assert!(
                    ((du + dv) as f32 - dd[i]).abs() < 1e-3,
                    "{pre} -> {post} gid {dst} edge {i}: distance {} vs |dU| + |dV| = {}",
                    dd[i],
                    du + dv
                );
            }
        }
    }
    let mut total = 0;
    let mut groups: BTreeMap<(u8, u8, i8), BTreeMap<String, f64>> = BTreeMap::new();
    for gid in p.range() {
        let ids = syn.get::<u32>(SYN_IDS, gid).unwrap();
        let (t, s, l) = (
            syn.get::<u8>(SYN_TYPES, gid).unwrap(),
            syn.get::<u8>(SWC_TYPES, gid).unwrap(),
            syn.get::<i8>(SYN_LAYERS, gid).unwrap(),
        );
        for i in 0..ids.len() {
            let pre =
                owner.get(&(gid, ids[i])).unwrap_or_else(|| panic!("{post} gid {gid} synapse {} has no edge", ids[i]));
            *groups.entry((t[i], s[i], l[i])).or_default().entry(pre.clone()).or_default() += 1.0;
            total += 1;
        }
    }
    assert_eq!(total, owner.len(), "{post}: edges = synapses");
    for ((t, s, l), by_pre) in &groups {
        let n: f64 = by_pre.values().sum();
        for (pre, prj) in &net.synapses[post] {
            let layer = net.layer_definitions.iter().find(|(_, &i)| i == *l).map(|(k, _)| k.clone()).unwrap();
            let prop: f64 = (0..prj.sections.len())
                .filter(|&k| prj.kind.code() == *t && prj.sections[k].code() == *s && prj.layers[k] == layer)
                .map(|k| prj.proportions[k])
                .sum();
            let got = by_pre.get(pre).copied().unwrap_or(0.0);
            let sd = (n * prop * (1.0 - prop)).sqrt();
            assert!(
                (got - n * prop).abs() <= 3.0 * sd + 1e-9,
                "{pre} -> {post} ({} {} {layer}): {got} of {n}, proportion {prop}",
                SynapseType::from_code(*t).unwrap().name(),
                SwcType::from_code(*s as i64).unwrap().name()
            );
        }
    }
}

/// h5py reads the files and finds neuroh5's layout and MiV's namespaces, with the counts the io crate reads.
fn readable_by_h5py(cells: &Path, conns: &Path) {
    let script = r#"
import sys, h5py, numpy as np, json
cells, conns = sys.argv[1], sys.argv[2]
out = {}
with h5py.File(cells, "r") as f:
    pops = f["H5Types/Populations"][:]
    labels = h5py.check_enum_dtype(f["H5Types/Populations"].dtype["Population"])
    inv = {v: k for k, v in labels.items()}
    out["ranges"] = {inv[int(r["Population"])]: [int(r["Start"]), int(r["Count"])] for r in pops}
    for pop in ["PYR", "PVBC", "OLM"]:
        g = f["Populations"][pop]["Synapse Attributes"]
        assert g["syn_ids/Attribute Value"].dtype == np.uint32
        assert g["syn_locs/Attribute Value"].dtype == np.float32
        assert g["syn_layers/Attribute Value"].dtype == np.int8
        ptr = g["syn_ids/Attribute Pointer"][:]
        assert ptr.dtype == np.uint64 and ptr[-1] == len(g["syn_ids/Attribute Value"])
        out[pop + " synapses"] = int(ptr[-1])
        t = f["Populations"][pop]["Trees"]
        assert len(t["Cell Index"]) == out["ranges"][pop][1]
        assert t["SWC Type/Attribute Value"].dtype == np.int8
    ci = f["Populations/STIM/Generated Coordinates/U Coordinate/Cell Index"][:]
    assert ci.dtype == np.uint32 and list(ci) == list(range(64))
with h5py.File(conns, "r") as f:
    for dst in f["Projections"]:
        for src in f["Projections"][dst]:
            e = f["Projections"][dst][src]["Edges"]
            dbp, dp, si = e["Destination Block Pointer"][:], e["Destination Pointer"][:], e["Source Index"][:]
            assert dbp[-1] == len(dp) and dp[-1] == len(si)
            assert len(f["Projections"][dst][src]["Synapses/syn_id"]) == len(si)
            assert f["Projections"][dst][src]["Connections/distance"].dtype == np.float32
            out[src + "->" + dst] = int(len(si))
print(json.dumps(out))
"#;
    let o = std::process::Command::new(python()).arg("-c").arg(script).arg(cells).arg(conns).output().unwrap();
    assert!(o.status.success(), "h5py: {}", String::from_utf8_lossy(&o.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let c = open(cells);
    for p in c.read_h5types().unwrap().populations.iter() {
        assert_eq!(doc["ranges"][&p.name], serde_json::json!([p.start, p.count]));
    }
    for pop in ["PYR", "PVBC", "OLM"] {
        let s = read_all(&c, pop, SYNAPSE_ATTRIBUTES);
        let n: usize = s.gids().iter().map(|&g| s.get::<u32>(SYN_IDS, g).unwrap().len()).sum();
        assert_eq!(doc[format!("{pop} synapses")], n);
    }
    let k = open(conns);
    for (src, dst) in k.projection_names().unwrap() {
        let e = k.read_projection(&src, &dst, &[], &Selection::All).unwrap();
        assert_eq!(doc[format!("{src}->{dst}")], e.num_edges());
    }
}
