//! Distance-dependent connectivity for one destination cell (MiV's `generate_uv_distance_connections`).
//!
//! 1. Every synapse is given to a presynaptic population: among the projections whose type, section type
//!    and layer match the synapse, one is drawn with the configured proportions (retried up to 10 rounds
//!    until every projection has a synapse).
//! 2. For each (projection, layer) group, in order of first appearance: the candidate sources are the cells
//!    of the presynaptic population within the axon extent in arc distance (|ΔU| < width_u/2, |ΔV| <
//!    width_v/2), weighted by a product of normal densities of |ΔU| − offset and |ΔV| − offset with σ =
//!    (width/2 − offset)/3; `ceil(n/contacts)` sources are drawn multinomially, each taken `contacts` times,
//!    shuffled with Gaussian clustering and given to the group's synapses sorted by cable distance.
//! 3. Each edge carries the synapse id and the distance |ΔU| + |ΔV| (µm).
//!
//! Random draws come from three streams keyed by (seed, purpose, destination gid), so a cell's edges do not
//! depend on which rank computes them. MiV compares layer indices with the extent's layer *names*, so it
//! always uses `default`; here a layer's own extent is used when configured.

use std::collections::BTreeMap;

use indexmap::IndexMap;
use miv_config::{AxonExtent, SwcType, SynapseType};
use miv_partition::{Purpose, Stream};

use super::synapses::SynapseSet;

pub const PARTITION: Purpose = Purpose::named("synapse projection partitions");
pub const CONNECTIVITY: Purpose = Purpose::named("distance-dependent connectivity");
pub const CLUSTERING: Purpose = Purpose::named("connectivity clustering");

const PARTITION_ROUNDS: usize = 10;
const CLUSTER_STD: f64 = 2.0;

/// The cells of a presynaptic population with their arc distances, sorted by gid.
#[derive(Debug, Clone, Default)]
pub struct SourceCells {
    pub gids: Vec<u64>,
    pub u: Vec<f64>,
    pub v: Vec<f64>,
    /// Cell positions in `gids` sorted by `u`, for window queries.
    by_u: Vec<u32>,
}

impl SourceCells {
    /// `cells` as (gid, U distance, V distance), any order.
    pub fn new(mut cells: Vec<(u64, f64, f64)>) -> SourceCells {
        cells.sort_by_key(|c| c.0);
        let gids: Vec<u64> = cells.iter().map(|c| c.0).collect();
        let u: Vec<f64> = cells.iter().map(|c| c.1).collect();
        let v: Vec<f64> = cells.iter().map(|c| c.2).collect();
        let mut by_u: Vec<u32> = (0..gids.len() as u32).collect();
        by_u.sort_by(|&a, &b| u[a as usize].total_cmp(&u[b as usize]).then(a.cmp(&b)));
        SourceCells { gids, u, v, by_u }
    }

    /// Positions (ascending) of the cells with |u − u0| < du and |v − v0| < dv.
    fn within(&self, u0: f64, v0: f64, du: f64, dv: f64) -> Vec<u32> {
        let lo = self.by_u.partition_point(|&i| self.u[i as usize] <= u0 - du);
        let hi = self.by_u.partition_point(|&i| self.u[i as usize] < u0 + du);
        let mut out: Vec<u32> = self.by_u[lo..hi]
            .iter()
            .copied()
            .filter(|&i| du - (u0 - self.u[i as usize]).abs() > 0.0 && dv - (v0 - self.v[i as usize]).abs() > 0.0)
            .collect();
        out.sort_unstable();
        out
    }
}

/// One projection into the destination population, with layer names resolved to indices.
#[derive(Debug, Clone)]
pub struct ProjectionRule {
    pub pre: String,
    pub kind: SynapseType,
    pub sections: Vec<SwcType>,
    pub layers: Vec<i8>,
    pub proportions: Vec<f64>,
    pub contacts: u32,
    /// Axon extent per layer index; `None` is the `default` entry.
    pub extents: BTreeMap<Option<i8>, AxonExtent>,
}

/// The edges of one destination cell from one presynaptic population, sorted by (source gid, synapse id).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CellEdges {
    pub sources: Vec<u64>,
    pub syn_ids: Vec<u32>,
    pub distances: Vec<f32>,
}

/// Connect one destination cell. `rules` and `sources` are parallel (one per presynaptic population, in
/// name order); the result has one entry per rule.
pub fn connect_cell(
    seed: u64,
    gid: u64,
    position: (f64, f64),
    syn: &SynapseSet,
    rules: &[ProjectionRule],
    sources: &[&SourceCells],
) -> Result<Vec<CellEdges>, String> {
    let partition = partition_synapses(seed, gid, syn, rules)?;
    let mut rs_con = Stream::new(seed, CONNECTIVITY, gid);
    let mut rs_clu = Stream::new(seed, CLUSTERING, gid);
    let mut out = vec![CellEdges::default(); rules.len()];
    // Candidates and weights per (rule, extent), shared by the layer groups that use the same extent.
    let mut cache: BTreeMap<(usize, Option<i8>), (Vec<u32>, Vec<f64>)> = BTreeMap::new();
    for (&r, groups) in &partition {
        let rule = &rules[r];
        let src = sources[r];
        for (&layer, idx) in groups {
            let key = if rule.extents.contains_key(&Some(layer)) { Some(layer) } else { None };
            let Some(ext) = rule.extents.get(&key) else {
                return Err(format!("no axon extent for {} in layer {layer} and no `default`", rule.pre));
            };
            let (cand, p) = cache.entry((r, key)).or_insert_with(|| candidates(src, position, ext));
            if cand.is_empty() {
                continue;
            }
            let mut ordered = idx.clone();
            ordered.sort_by(|&a, &b| syn.syn_cdists[a].total_cmp(&syn.syn_cdists[b]));
            let n = ordered.len();
            let contacts = rule.contacts.max(1) as u64;
            let mut counts = multinomial(&mut rs_con, (n as u64).div_ceil(contacts), p);
            for c in &mut counts {
                *c *= contacts;
            }
            let chosen = clustered_shuffle(&counts, &mut rs_clu);
            let e = &mut out[r];
            for (&s, &si) in chosen.iter().take(n).zip(&ordered) {
                let c = cand[s] as usize;
                e.sources.push(src.gids[c]);
                e.syn_ids.push(syn.syn_ids[si]);
                e.distances.push(((position.0 - src.u[c]).abs() + (position.1 - src.v[c]).abs()) as f32);
            }
        }
    }
    for (r, e) in out.iter_mut().enumerate() {
        if e.sources.is_empty() {
            return Err(format!("no source cell of {} lies within its axon extent", rules[r].pre));
        }
        let mut order: Vec<usize> = (0..e.sources.len()).collect();
        order.sort_by_key(|&i| (e.sources[i], e.syn_ids[i]));
        *e = CellEdges {
            sources: order.iter().map(|&i| e.sources[i]).collect(),
            syn_ids: order.iter().map(|&i| e.syn_ids[i]).collect(),
            distances: order.iter().map(|&i| e.distances[i]).collect(),
        };
    }
    Ok(out)
}

/// Step 1: synapse index lists per rule and layer, both in order of first appearance.
fn partition_synapses(
    seed: u64,
    gid: u64,
    syn: &SynapseSet,
    rules: &[ProjectionRule],
) -> Result<IndexMap<usize, IndexMap<i8, Vec<usize>>>, String> {
    let mut rs = Stream::new(seed, PARTITION, gid);
    let mut part: IndexMap<usize, IndexMap<i8, Vec<usize>>> = IndexMap::new();
    let mut cand: Vec<usize> = Vec::new();
    let mut weights: Vec<f64> = Vec::new();
    for _ in 0..PARTITION_ROUNDS {
        part.clear();
        for i in 0..syn.len() {
            let (t, swc, layer) = (syn.syn_types[i], syn.swc_types[i], syn.syn_layers[i]);
            cand.clear();
            weights.clear();
            for (r, rule) in rules.iter().enumerate() {
                if rule.kind.code() != t {
                    continue;
                }
                for k in 0..rule.sections.len() {
                    if rule.sections[k].code() == swc && rule.layers[k] == layer {
                        cand.push(r);
                        weights.push(rule.proportions[k]);
                    }
                }
            }
            let r = match cand.len() {
                0 => {
                    let ty = SynapseType::from_code(t).map(|t| t.name()).unwrap_or("?");
                    let sw = SwcType::from_code(swc as i64).map(|t| t.name()).unwrap_or("?");
                    return Err(format!(
                        "no projection takes {ty} synapse {} on {sw} in layer {layer}",
                        syn.syn_ids[i]
                    ));
                }
                1 => cand[0],
                _ => cand[rs.choice(&weights)],
            };
            part.entry(r).or_default().entry(layer).or_default().push(i);
        }
        if part.len() == rules.len() {
            return Ok(part);
        }
    }
    let empty: Vec<&str> = (0..rules.len()).filter(|r| !part.contains_key(r)).map(|r| rules[r].pre.as_str()).collect();
    Err(format!("projections from {} get no synapse in {PARTITION_ROUNDS} rounds", empty.join(", ")))
}

/// Candidate positions (ascending gid) and normalised weights.
fn candidates(src: &SourceCells, (u0, v0): (f64, f64), ext: &AxonExtent) -> (Vec<u32>, Vec<f64>) {
    let half = [ext.width[0] / 2.0 - ext.offset[0], ext.width[1] / 2.0 - ext.offset[1]];
    let sigma = [half[0] / 3.0, half[1] / 3.0];
    let cand = src.within(u0, v0, half[0] + ext.offset[0], half[1] + ext.offset[1]);
    let mut p: Vec<f64> = cand
        .iter()
        .map(|&c| {
            let du = (u0 - src.u[c as usize]).abs();
            let dv = (v0 - src.v[c as usize]).abs();
            normal_pdf(du - ext.offset[0], sigma[0]) * normal_pdf(dv - ext.offset[1], sigma[1])
        })
        .collect();
    let sum: f64 = p.iter().sum();
    if sum > 0.0 {
        for x in &mut p {
            *x /= sum;
        }
    }
    (cand, p)
}

/// Multinomial counts of `n` draws over `p`: by sequential binomials, or, when there are many more categories
/// than draws, by `n` categorical draws on the cumulative weights (O(n log k) instead of O(k)).
fn multinomial(stream: &mut Stream, n: u64, p: &[f64]) -> Vec<u64> {
    if (n as usize).saturating_mul(8) >= p.len() {
        return stream.multinomial(n, p);
    }
    let mut cum = Vec::with_capacity(p.len());
    let mut total = 0.0;
    for &x in p {
        total += x;
        cum.push(total);
    }
    let mut counts = vec![0u64; p.len()];
    for _ in 0..n {
        let u = stream.uniform() * total;
        let i = cum.partition_point(|&c| c <= u).min(p.len() - 1);
        counts[i] += 1;
    }
    counts
}

fn normal_pdf(x: f64, sigma: f64) -> f64 {
    (-(x * x) / (2.0 * sigma * sigma)).exp() / (sigma * (2.0 * std::f64::consts::PI).sqrt())
}

/// MiV's `random_clustered_shuffle`: each candidate gets a centre (sorted uniforms in (−1, 1)); candidate i
/// contributes `counts[i]` samples around its centre (σ 2); candidates are read off the sorted samples.
fn clustered_shuffle(counts: &[u64], stream: &mut Stream) -> Vec<usize> {
    let mut centres: Vec<f64> = counts.iter().map(|_| stream.uniform_range(-1.0, 1.0)).collect();
    centres.sort_by(f64::total_cmp);
    let mut samples: Vec<(f64, usize)> = Vec::with_capacity(counts.iter().sum::<u64>() as usize);
    for (i, &c) in counts.iter().enumerate() {
        for _ in 0..c {
            samples.push((centres[i] + stream.normal(0.0, CLUSTER_STD), i));
        }
    }
    samples.sort_by(|a, b| a.0.total_cmp(&b.0));
    samples.into_iter().map(|s| s.1).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn syn(types: &[(u8, u8, i8)]) -> SynapseSet {
        let n = types.len();
        SynapseSet {
            syn_ids: (0..n as u32).collect(),
            syn_locs: vec![0.5; n],
            syn_secs: vec![0; n],
            syn_layers: types.iter().map(|t| t.2).collect(),
            syn_types: types.iter().map(|t| t.0).collect(),
            swc_types: types.iter().map(|t| t.1).collect(),
            syn_cdists: (0..n).map(|i| ((n - i) % 7) as f32).collect(),
        }
    }

    fn rule(
        pre: &str,
        kind: SynapseType,
        sections: &[SwcType],
        layers: &[i8],
        props: &[f64],
        width: f64,
    ) -> ProjectionRule {
        ProjectionRule {
            pre: pre.into(),
            kind,
            sections: sections.to_vec(),
            layers: layers.to_vec(),
            proportions: props.to_vec(),
            contacts: 1,
            extents: [(None, AxonExtent { width: [width, width], offset: [0.0, 0.0] })].into(),
        }
    }

    fn grid(start: u64, n: u64) -> SourceCells {
        SourceCells::new(
            (0..n).map(|i| (start + i, (i % 10) as f64 * 20.0 - 90.0, (i / 10) as f64 * 20.0 - 90.0)).collect(),
        )
    }

    #[test]
    fn proportions_split_synapses_and_sources_lie_within_the_extent() {
        // 4000 excitatory basal synapses in layer 5, split 0.3 / 0.7 between A and B.
        let s = syn(&vec![(0u8, 3u8, 5i8); 4000]);
        let rules = [
            rule("A", SynapseType::Excitatory, &[SwcType::Basal], &[5], &[0.3], 100.0),
            rule("B", SynapseType::Excitatory, &[SwcType::Basal], &[5], &[0.7], 100.0),
        ];
        let (a, b) = (grid(0, 100), grid(100, 100));
        let e = connect_cell(7, 500, (0.0, 0.0), &s, &rules, &[&a, &b]).unwrap();
        assert_eq!(e[0].sources.len() + e[1].sources.len(), 4000);
        let fa = e[0].sources.len() as f64 / 4000.0;
        assert!((fa - 0.3).abs() < 3.0 * (0.3f64 * 0.7 / 4000.0).sqrt(), "{fa}");
        // Every synapse used once.
        let mut ids: Vec<u32> = e.iter().flat_map(|x| x.syn_ids.iter().copied()).collect();
        ids.sort_unstable();
        assert_eq!(ids, (0..4000).collect::<Vec<_>>());
        for (r, src) in [(0usize, &a), (1, &b)] {
            for (&g, &d) in e[r].sources.iter().zip(&e[r].distances) {
                let i = src.gids.binary_search(&g).unwrap();
                assert!(src.u[i].abs() < 50.0 && src.v[i].abs() < 50.0, "source {g} outside the extent");
                assert_eq!(d, (src.u[i].abs() + src.v[i].abs()) as f32);
            }
            assert!(e[r].sources.windows(2).all(|w| w[0] <= w[1]));
        }
        // Nearer sources are chosen more often than far ones (Gaussian weights).
        let near = e[1]
            .sources
            .iter()
            .filter(|&&g| {
                let i = b.gids.binary_search(&g).unwrap();
                b.u[i].abs() + b.v[i].abs() < 30.0
            })
            .count();
        let far = e[1]
            .sources
            .iter()
            .filter(|&&g| {
                let i = b.gids.binary_search(&g).unwrap();
                b.u[i].abs() + b.v[i].abs() > 60.0
            })
            .count();
        assert!(near > far, "{near} near vs {far} far");
        assert_eq!(e, connect_cell(7, 500, (0.0, 0.0), &s, &rules, &[&a, &b]).unwrap());
    }

    #[test]
    fn sparse_multinomial_follows_the_weights() {
        let mut s = Stream::new(5, Purpose::named("m"), 0);
        let p: Vec<f64> = (0..400).map(|i| if i % 100 == 0 { 0.25 } else { 0.0 }).collect();
        let mut tot = vec![0u64; 400];
        for _ in 0..2000 {
            let c = multinomial(&mut s, 20, &p);
            assert_eq!(c.iter().sum::<u64>(), 20);
            for (t, x) in tot.iter_mut().zip(c) {
                *t += x;
            }
        }
        for (i, &t) in tot.iter().enumerate() {
            if i % 100 == 0 {
                assert!((t as f64 / 40_000.0 - 0.25).abs() < 0.01, "{i}: {t}");
            } else {
                assert_eq!(t, 0);
            }
        }
    }

    #[test]
    fn contacts_repeat_sources() {
        let s = syn(&vec![(1u8, 1u8, 6i8); 300]);
        let mut r = rule("A", SynapseType::Inhibitory, &[SwcType::Soma], &[6], &[1.0], 400.0);
        r.contacts = 3;
        let a = grid(0, 100);
        let e = connect_cell(1, 9, (0.0, 0.0), &s, &[r], &[&a]).unwrap();
        assert_eq!(e[0].sources.len(), 300);
        let mut per: BTreeMap<u64, usize> = BTreeMap::new();
        for g in &e[0].sources {
            *per.entry(*g).or_default() += 1;
        }
        assert!(per.values().all(|&c| c % 3 == 0), "{per:?}");
    }

    #[test]
    fn unmatched_synapse_is_an_error() {
        let s = syn(&[(0, 4, 9)]);
        let rules = [rule("A", SynapseType::Excitatory, &[SwcType::Basal], &[5], &[1.0], 100.0)];
        let e = connect_cell(1, 9, (0.0, 0.0), &s, &rules, &[&grid(0, 10)]).unwrap_err();
        assert!(e.contains("no projection takes excitatory synapse 0 on apical in layer 9"), "{e}");
    }
}
