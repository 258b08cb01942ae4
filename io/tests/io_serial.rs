//! NeuroH5 reading and writing in one process: the DOMAIN A.7 example read back, round trips of every
//! dtype with empty cells and namespaces, appends, trees, projections, output files, malformed files.

mod common;

use common::paths::*;
use common::*;
use std::collections::BTreeMap;

use miv_io::{
    CellAttributes, Dtype, H5Types, NeuroH5File, NodeBase, PopulationRanges, Projection, Selection, Values,
    WriteOptions,
};
use miv_partition::{Assignment, SerialComm};

#[test]
fn a7_example_reads_back_as_the_spec_states() {
    no_file_locking();
    let dir = scratch("io_a7_read");
    let path = dir.join("a7.h5");
    write_a7(&path);
    assert!(!miv_io::file::partial_path(&path).exists(), "the .partial file was renamed");
    let comm = SerialComm;
    let f = NeuroH5File::open(&path, &comm).unwrap();
    let t = f.read_h5types().unwrap();
    assert_eq!(t, a7_types());
    let x = f.read_cell_attributes("B", "Generated Coordinates", &Selection::All, None).unwrap();
    assert_eq!(x.get::<f32>("X Coordinate", 3).unwrap(), &[12.5]);
    assert_eq!(x.get::<f32>("X Coordinate", 4).unwrap(), &[80.0]);
    let s = f.read_cell_attributes("B", "Synapse Attributes", &Selection::All, Some(&["syn_ids"])).unwrap();
    assert_eq!(s.names(), vec!["syn_ids".to_string()]);
    assert_eq!(s.get::<u32>("syn_ids", 3).unwrap(), &[0, 1, 2]);
    assert_eq!(s.get::<u32>("syn_ids", 4).unwrap(), &[0, 1]);
    let trees = f.read_trees("B", &Selection::All).unwrap();
    assert_eq!(trees.keys().copied().collect::<Vec<_>>(), vec![3, 4]);
    assert_eq!(trees[&3], a7_tree());
    assert_eq!(trees[&4].topology().unwrap().loc, vec![1, 1]);
    let p = f.read_projection("A", "B", &["Synapses", "Connections"], &Selection::All).unwrap();
    assert_eq!(p.destinations(), &[3, 4]);
    assert_eq!(p.source_index(), &[0, 2, 1]);
    assert_eq!(p.sources_of(3).unwrap(), vec![0, 2]);
    assert_eq!(p.attr::<u32>("Synapses", "syn_id").unwrap(), &[0, 1, 1]);
    assert_eq!(p.attr::<f32>("Connections", "distance").unwrap(), &[55.0, 40.0, 20.0]);
    let info = f.projection_info("A", "B").unwrap();
    assert_eq!((info.edges, info.destinations, info.blocks), (3, 2, 1));
    let refs = f.namespace_attributes("B", "Arc Distances").unwrap();
    assert_eq!(
        refs,
        vec![
            ("Reference U Min".into(), -250.0),
            ("Reference U Max".into(), 250.0),
            ("Reference V Min".into(), -125.5),
            ("Reference V Max".into(), 125.5)
        ]
    );
}

fn types3() -> H5Types {
    H5Types {
        populations: PopulationRanges::from_counts(&[("P", 3, 40), ("Q", 7, 25)]).unwrap(),
        projections: vec![("P".into(), "Q".into())],
    }
}

/// A random column of `n` values of type `d`.
fn column(g: &mut miv_partition::Stream, d: Dtype, n: usize) -> Values {
    let mut v = Values::zeros(d, n);
    for b in v.as_bytes_mut() {
        *b = g.next_u64() as u8;
    }
    match &mut v {
        Values::F32(x) => x.iter_mut().for_each(|e| *e = (g.below(1 << 20) as f32 - 5e5) / 7.0),
        Values::F64(x) => x.iter_mut().for_each(|e| *e = (g.next_u64() >> 11) as f64 / 3.0 - 1e15),
        _ => {}
    }
    v
}

#[test]
fn every_dtype_roundtrips_with_empty_cells_and_appends() {
    no_file_locking();
    let dir = scratch("io_roundtrip");
    let comm = SerialComm;
    for seed in 1..=4u64 {
        let path = dir.join(format!("rt{seed}.h5"));
        let mut g = gen(seed);
        let f = NeuroH5File::create(&path, &comm).unwrap();
        f.write_h5types(&types3()).unwrap();
        let p = f.population("P").unwrap();
        // What every gid should hold, per attribute, built while writing in 1..=3 appends.
        let mut want: BTreeMap<(String, u64), Values> = BTreeMap::new();
        let appends = 1 + g.below(3);
        for _ in 0..appends {
            let mut cells = CellAttributes::new();
            for d in Dtype::ALL {
                cells.declare(&format!("a_{d}"), d).unwrap();
            }
            for gid in p.range() {
                if want.keys().any(|(_, w)| *w == gid) || g.below(3) == 0 {
                    continue;
                }
                for d in Dtype::ALL {
                    if g.below(4) == 0 {
                        continue;
                    }
                    let n = g.below(5) as usize;
                    let v = column(&mut g, d, n);
                    cells.push_values(&format!("a_{d}"), gid, &v).unwrap();
                    want.insert((format!("a_{d}"), gid), v);
                }
            }
            f.append_cell_attributes(
                "P",
                "All",
                &cells,
                &WriteOptions { chunk_size: 1 + g.below(9), value_chunk_size: 1 + g.below(9), ..Default::default() },
            )
            .unwrap();
        }
        // An empty namespace: declared attributes, no cells.
        let mut none = CellAttributes::new();
        none.declare("nothing", Dtype::I16).unwrap();
        f.append_cell_attributes("Q", "Empty", &none, &WriteOptions::default()).unwrap();
        f.finish().unwrap();

        let f = NeuroH5File::open(&path, &comm).unwrap();
        let all = f.read_cell_attributes("P", "All", &Selection::All, None).unwrap();
        for d in Dtype::ALL {
            let name = format!("a_{d}");
            let a = all.attribute(&name).unwrap();
            assert_eq!(a.dtype(), d);
            let expect: Vec<u64> = want.keys().filter(|(n, _)| *n == name).map(|(_, g)| *g).collect();
            assert_eq!(a.gids(), expect.as_slice(), "seed {seed} {name}");
            for &gid in &expect {
                assert_eq!(a.get_values(gid).as_ref(), want.get(&(name.clone(), gid)), "seed {seed} {name} gid {gid}");
            }
        }
        // A subset of gids, and the owner selection of rank 0 of 3 (gid % 3 == 0) through one process.
        let pick: Vec<u64> = p.range().filter(|g| g % 4 == 1).collect();
        let some = f.read_cell_attributes("P", "All", &Selection::Gids(&pick), Some(&["a_int8"])).unwrap();
        let a = some.attribute("a_int8").unwrap();
        assert!(a.gids().iter().all(|g| pick.contains(g)));
        assert_eq!(a.num_cells(), want.keys().filter(|(n, g)| n == "a_int8" && pick.contains(g)).count());
        let e = f.read_cell_attributes("Q", "Empty", &Selection::All, None).unwrap();
        assert_eq!(e.attribute("nothing").unwrap().num_cells(), 0);
        assert_eq!(e.attribute("nothing").unwrap().dtype(), Dtype::I16);
        let info = f.attribute_info("P", "All").unwrap();
        assert_eq!(info.len(), 10);
        let one = Assignment::round_robin(1);
        assert_eq!(f.read_cell_attributes("P", "All", &Selection::Owned(&one), None).unwrap(), all);
    }
}

#[test]
fn projection_roundtrip_with_appends_and_blocks() {
    no_file_locking();
    let dir = scratch("io_projection");
    let comm = SerialComm;
    for (seed, block_size) in [(1u64, 1_000_000u64), (2, 3), (3, 0)] {
        let path = dir.join(format!("p{seed}.h5"));
        let mut g = gen(seed);
        let f = NeuroH5File::create(&path, &comm).unwrap();
        f.write_h5types(&types3()).unwrap();
        let r = f.population_ranges().unwrap();
        let (src, dst) = (r.get("P").unwrap().clone(), r.get("Q").unwrap().clone());
        // Expected: per destination, (source, syn_id, weight) in sorted-by-source order (stable).
        let mut want: BTreeMap<u64, Vec<(u64, u32, f64)>> = BTreeMap::new();
        for _ in 0..3 {
            let mut p = Projection::new(&src, &dst);
            for d in dst.range() {
                if want.contains_key(&d) || g.below(2) == 0 {
                    continue;
                }
                let k = g.below(5) as usize;
                let s: Vec<u64> = (0..k).map(|_| src.start + g.below(src.count)).collect();
                let id: Vec<u32> = (0..k).map(|_| g.below(100) as u32).collect();
                let w: Vec<f64> = (0..k).map(|_| g.below(1000) as f64 / 8.0).collect();
                p.push(d, &s).unwrap();
                p.attr_mut::<u32>("Synapses", "syn_id").unwrap().extend(&id);
                p.attr_mut::<f64>("Weights", "w").unwrap().extend(&w);
                if k > 0 {
                    let mut e: Vec<(u64, u32, f64)> = (0..k).map(|i| (s[i], id[i], w[i])).collect();
                    e.sort_by_key(|x| x.0);
                    want.insert(d, e);
                }
            }
            f.append_projection(&p, &WriteOptions { block_size, ..Default::default() }).unwrap();
        }
        f.finish().unwrap();
        let f = NeuroH5File::open(&path, &comm).unwrap();
        let p = f.read_projection("P", "Q", &["Synapses", "Weights"], &Selection::All).unwrap();
        assert_eq!(p.destinations(), want.keys().copied().collect::<Vec<_>>().as_slice(), "seed {seed}");
        for (d, e) in &want {
            let r = p.edges_of(*d).unwrap();
            assert_eq!(p.sources_of(*d).unwrap(), e.iter().map(|x| x.0).collect::<Vec<_>>());
            assert_eq!(
                &p.attr::<u32>("Synapses", "syn_id").unwrap()[r.clone()],
                e.iter().map(|x| x.1).collect::<Vec<_>>().as_slice()
            );
            assert_eq!(
                &p.attr::<f64>("Weights", "w").unwrap()[r],
                e.iter().map(|x| x.2).collect::<Vec<_>>().as_slice()
            );
        }
        let info = f.projection_info("P", "Q").unwrap();
        assert_eq!(info.edges as usize, want.values().map(|e| e.len()).sum::<usize>());
        assert_eq!(info.destinations as usize, want.len());
        // Small blocks split more: with block_size 0 a block never holds more than one destination with edges
        // beyond the first (neuroh5 splits once the block's edges exceed block_size).
        if block_size == 0 {
            assert_eq!(info.blocks as usize, want.len());
        }
    }
}

#[test]
fn trees_from_swc_roundtrip_and_keep_their_topology() {
    no_file_locking();
    let dir = scratch("io_trees");
    let comm = SerialComm;
    let path = dir.join("forest.h5");
    let pyr = miv_io::read_swc(morphology_dir().join("PYR.swc")).unwrap();
    let olm = miv_io::read_swc(morphology_dir().join("OLM.swc")).unwrap();
    let f = NeuroH5File::create(&path, &comm).unwrap();
    f.write_h5types(&types3()).unwrap();
    f.append_trees("P", [(3u64, &pyr), (5, &olm)], &WriteOptions::default()).unwrap();
    f.append_trees("P", [(4u64, &olm)], &WriteOptions::default()).unwrap();
    f.finish().unwrap();
    let f = NeuroH5File::open(&path, &comm).unwrap();
    let t = f.read_trees("P", &Selection::All).unwrap();
    assert_eq!(t.keys().copied().collect::<Vec<_>>(), vec![3, 4, 5]);
    assert_eq!(t[&3], pyr);
    assert_eq!(t[&4], olm);
    assert_eq!(t[&5], olm);
    assert_eq!(t[&3].topology().unwrap(), pyr.topology().unwrap());
    let info = f.attribute_info("P", "Trees").unwrap();
    let x = info.iter().find(|a| a.name == "X Coordinate").unwrap();
    assert_eq!(x.values as usize, pyr.num_points() + 2 * olm.num_points());
    // Every attribute reads the namespace's one cell index; point attributes share one pointer.
    assert!(info.iter().all(|a| a.index_id == x.index_id));
    assert_eq!(info.iter().filter(|a| a.ptr_id == x.ptr_id).count(), 7);
}

#[test]
fn malformed_trees_name_the_dataset() {
    no_file_locking();
    let dir = scratch("io_bad_trees");
    let path = dir.join("a7.h5");
    write_a7(&path);
    run_python("import sys, h5py\nf = h5py.File(sys.argv[1], 'a')\nf['/Populations/B/Trees/Section/Attribute Value'][0] = 4\nf.close()", &[path.to_str().unwrap()]);
    let comm = SerialComm;
    let f = NeuroH5File::open(&path, &comm).unwrap();
    let e = f.read_trees("B", &Selection::All).unwrap_err().to_string();
    assert!(e.contains("a7.h5") && e.contains("/Populations/B/Trees/Section") && e.contains("gid 3"), "{e}");
    // The raw namespace still reads.
    assert_eq!(f.read_cell_attributes("B", "Trees", &Selection::All, None).unwrap().gids(), vec![3, 4]);
}

/// `Section` node ids written 0-based and 1-based read back to the same trees; the stored values differ by
/// one; a tree whose ids fit neither base is rejected naming the file, population, gid and dataset.
#[test]
fn trees_round_trip_in_both_node_bases() {
    no_file_locking();
    let dir = scratch("io_tree_bases");
    let comm = SerialComm;
    let t = a7_tree();
    for (base, first_ids) in [(NodeBase::Zero, [0u16, 1]), (NodeBase::One, [1u16, 2])] {
        let path = dir.join(format!("base{}.h5", u8::from(base)));
        let f = NeuroH5File::create(&path, &comm).unwrap();
        f.write_h5types(&a7_types()).unwrap();
        f.append_trees_in("B", [(3u64, &t), (4u64, &t)], base, &WriteOptions::default()).unwrap();
        f.finish().unwrap();
        let f = NeuroH5File::open(&path, &comm).unwrap();
        let raw = f.read_cell_attributes("B", "Trees", &Selection::All, Some(&["Section"])).unwrap();
        assert_eq!(&raw.get::<u16>("Section", 3).unwrap()[2..4], &first_ids, "{base:?}");
        let trees = f.read_trees("B", &Selection::All).unwrap();
        assert_eq!(trees[&3], t, "{base:?}");
        assert_eq!(trees[&4], t, "{base:?}");
    }
    // The default is 1-based (neuroh5 HEAD).
    let path = dir.join("default.h5");
    let f = NeuroH5File::create(&path, &comm).unwrap();
    f.write_h5types(&a7_types()).unwrap();
    f.append_trees("B", [(3u64, &t)], &WriteOptions::default()).unwrap();
    f.finish().unwrap();
    let f = NeuroH5File::open(&path, &comm).unwrap();
    let raw = f.read_cell_attributes("B", "Trees", &Selection::All, Some(&["Section"])).unwrap();
    assert_eq!(raw.get::<u16>("Section", 3).unwrap(), t.encode_sections_in(NodeBase::One).as_slice());
    // Ambiguous: a 4-point tree whose sections list neither 0 nor 4 (a point left out), written raw.
    let path = dir.join("ambiguous.h5");
    let f = NeuroH5File::create(&path, &comm).unwrap();
    f.write_h5types(&a7_types()).unwrap();
    let mut c = CellAttributes::new();
    c.push("X Coordinate", 3, &[0.0f32; 4]).unwrap();
    c.push("Y Coordinate", 3, &[0.0f32; 4]).unwrap();
    c.push("Z Coordinate", 3, &[0.0f32; 4]).unwrap();
    c.push("Radius", 3, &[1.0f32; 4]).unwrap();
    c.push("Point Layer", 3, &[-1i8; 4]).unwrap();
    c.push("Parent Point", 3, &[-1i32, 0, 1, 1]).unwrap();
    c.push("SWC Type", 3, &[1i8, 1, 3, 3]).unwrap();
    c.push("Section", 3, &[2u16, 2, 1, 2, 2, 2, 3]).unwrap();
    c.push("Source Section", 3, &[0u16]).unwrap();
    c.push("Destination Section", 3, &[1u16]).unwrap();
    f.append_cell_attributes("B", "Trees", &c, &WriteOptions::default()).unwrap();
    f.finish().unwrap();
    let f = NeuroH5File::open(&path, &comm).unwrap();
    let e = f.read_trees("B", &Selection::All).unwrap_err().to_string();
    for part in ["ambiguous.h5", "/Populations/B/Trees", "Section", "gid 3", "ambiguous"] {
        assert!(e.contains(part), "{part} missing from: {e}");
    }
}
