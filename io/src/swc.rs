//! SWC import: `id type x y z radius parent [layer]` per line, as neuroh5's `neurotrees_import` reads it
//! (DOMAIN B.4). Ids become 0-based positions in file order (for MiV's cells, whose ids are 0..N-1, this is
//! the identity) and parents are renumbered to match; the optional 8th column fills `Point Layer` (-1 when
//! absent). Sections come from [`crate::tree::contract`].

use std::collections::HashMap;
use std::path::Path;

use crate::error::{IoError, Result};
use crate::tree::Tree;

/// Parse SWC text (`file` only names it in errors).
pub fn parse_swc(text: &str, file: &Path) -> Result<Tree> {
    let err = |line: usize, problem: String| IoError::Parse { file: file.to_path_buf(), line, problem };
    let (mut ids, mut parents_raw) = (Vec::new(), Vec::new());
    let (mut x, mut y, mut z, mut radius, mut layer, mut swc_type) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut lines = Vec::new();
    for (ln, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 7 {
            return Err(err(
                ln + 1,
                format!("expected at least 7 columns (id type x y z radius parent [layer]), found {}", f.len()),
            ));
        }
        let int = |i: usize, what: &str| {
            f[i].parse::<i64>()
                .map_err(|_| err(ln + 1, format!("column {} ({what}) is not an integer: {:?}", i + 1, f[i])))
        };
        let real = |i: usize, what: &str| {
            f[i].parse::<f32>()
                .map_err(|_| err(ln + 1, format!("column {} ({what}) is not a number: {:?}", i + 1, f[i])))
        };
        ids.push(int(0, "id")?);
        let t = int(1, "type")?;
        if !(i8::MIN as i64..=i8::MAX as i64).contains(&t) {
            return Err(err(ln + 1, format!("SWC type {t} does not fit int8")));
        }
        swc_type.push(t as i8);
        x.push(real(2, "x")?);
        y.push(real(3, "y")?);
        z.push(real(4, "z")?);
        radius.push(real(5, "radius")?);
        parents_raw.push(int(6, "parent")?);
        let l = if f.len() > 7 { int(7, "layer")? } else { -1 };
        if !(i8::MIN as i64..=i8::MAX as i64).contains(&l) {
            return Err(err(ln + 1, format!("layer {l} does not fit int8")));
        }
        layer.push(l as i8);
        lines.push(ln + 1);
    }
    if ids.is_empty() {
        return Err(err(0, "no points".into()));
    }
    let mut pos: HashMap<i64, usize> = HashMap::with_capacity(ids.len());
    for (i, &id) in ids.iter().enumerate() {
        if pos.insert(id, i).is_some() {
            return Err(err(lines[i], format!("point id {id} appears twice")));
        }
    }
    let mut parent = Vec::with_capacity(ids.len());
    for (i, &p) in parents_raw.iter().enumerate() {
        if p < 0 {
            parent.push(-1);
        } else {
            match pos.get(&p) {
                Some(&j) => parent.push(j as i32),
                None => return Err(err(lines[i], format!("parent {p} is not a point id"))),
            }
        }
    }
    Tree::from_points(x, y, z, radius, layer, parent, swc_type).map_err(|e| err(0, e.to_string()))
}

/// Read and parse an SWC file.
pub fn read_swc(path: impl AsRef<Path>) -> Result<Tree> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|e| IoError::Fs {
        file: path.to_path_buf(),
        what: "read SWC".into(),
        detail: e.to_string(),
    })?;
    parse_swc(&text, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::swc_types::*;

    fn shared(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/morphology").join(name)
    }

    fn by_type(t: &Tree) -> std::collections::BTreeMap<i8, usize> {
        let mut m = std::collections::BTreeMap::new();
        for s in 0..t.num_sections() {
            *m.entry(t.section_type(s)).or_default() += 1;
        }
        m
    }

    /// DOMAIN D.1: PYR has 10 346 points and 167 sections (2 soma, 56 basal, 107 apical, 1 ais, 1 axon).
    #[test]
    fn pyr_contracts_to_167_sections() {
        let t = read_swc(shared("PYR.swc")).unwrap();
        assert_eq!(t.num_points(), 10346);
        assert_eq!(t.num_sections(), 167);
        let m = by_type(&t);
        assert_eq!(m.get(&SOMA), Some(&2));
        assert_eq!(m.get(&BASAL), Some(&56));
        assert_eq!(m.get(&APICAL), Some(&107));
        assert_eq!(m.get(&AIS), Some(&1));
        assert_eq!(m.get(&AXON), Some(&1));
        // Every non-root section hangs off exactly one parent, and topology finds each junction.
        assert_eq!(t.src.len(), 166);
        let topo = t.topology().unwrap();
        assert_eq!(topo.loc.len(), 166);
        assert!(topo.section.iter().all(|&s| (s as usize) < 167));
        assert!(t.layer.iter().all(|l| [5, 6, 8, 9].contains(l)));
    }

    /// DOMAIN D.1: PVBC 1 820 points, 5 sections (1 soma, 2 basal, 2 apical); OLM 954 points, 4 sections
    /// (1 soma, 2 basal, 1 axon).
    #[test]
    fn pvbc_and_olm_section_counts() {
        let p = read_swc(shared("PVBC.swc")).unwrap();
        assert_eq!((p.num_points(), p.num_sections()), (1820, 5));
        assert_eq!(by_type(&p), [(SOMA, 1), (BASAL, 2), (APICAL, 2)].into_iter().collect());
        let o = read_swc(shared("OLM.swc")).unwrap();
        assert_eq!((o.num_points(), o.num_sections()), (954, 4));
        assert_eq!(by_type(&o), [(SOMA, 1), (AXON, 1), (BASAL, 2)].into_iter().collect());
    }

    #[test]
    fn bad_lines_name_file_and_line() {
        let e = parse_swc("0 1 0 0 0 1 -1\n1 1 0 x 0 1 0\n", Path::new("cell.swc")).unwrap_err().to_string();
        assert!(e.starts_with("cell.swc:2:"), "{e}");
        let e = parse_swc("0 1 0 0 0 1 -1\n1 1 0 0 0 1 7\n", Path::new("c.swc")).unwrap_err().to_string();
        assert!(e.contains("parent 7"), "{e}");
        // 1-based ids are renumbered to positions.
        let t = parse_swc("1 1 0 0 0 1 -1\n2 3 0 1 0 1 1\n3 3 0 2 0 1 2\n", Path::new("c.swc")).unwrap();
        assert_eq!(t.parent, vec![-1, 0, 1]);
        assert_eq!(t.layer, vec![-1, -1, -1]);
    }
}
