//! Synapse placement along a cell's segments (MiV's `distribute_poisson_synapses` and the uniform variant).
//!
//! For every SWC type in the density table (in table order): draw one density per (synapse type, section,
//! segment) from the segment's layer entry (else `default`, else none), redrawing until positive; then per
//! synapse type walk the sections in MiV's depth-first order and place synapses as a Poisson process with
//! exponential gaps of mean 1/density. The first synapse of a section is drawn inside the section's first
//! segment, as in MiV.
//!
//! Two quirks of MiV-Simulator d2f14d4 are not reproduced by default, because they contradict the
//! configuration they read; [`Quirks::miv`] (the network YAML's `miv_compat: true`) reproduces both:
//!
//! * **Last-listed density.** MiV's `synapse_seg_density` decides *whether* a segment gets synapses from its
//!   layer's entry (else `default`), but draws the density from `density_dict`, the loop variable left over
//!   from the loop over the layer entries: the *last* entry listed for that (SWC type, synapse type), for every
//!   layer. By default each layer gets its own entry. (This applies to both distributions: MiV's
//!   `synapse_seg_counts` has the same closure.)
//! * **Carry-over.** At the start of every later segment of a section (`interval > 0`), MiV adds the
//!   segment's first gap to the position already drawn past the previous segment's end, which loses about one
//!   synapse per segment and many more after a sparse segment (whose overshoot is long). By default that gap
//!   starts at the segment's start, so the count in each segment is Poisson with mean density × length.
//!
//! The draws are taken in MiV's order either way: densities per (synapse type, section in index order,
//! segment), then per synapse type the sections in placement order, one exponential per gap.

use std::collections::BTreeMap;

use miv_config::{Density, LayerDefinitions, SwcType, SynapseDensities, SynapseDistribution, SynapseType};
use miv_partition::Stream;

use super::morphology::Morphology;

const MAX_DENSITY_DRAWS: usize = 1000;
const MAX_PLACEMENT_DRAWS: usize = 100_000;

/// The random draws placement takes: a cell's [`Stream`], or recorded draws (tests replay MiV's own).
pub trait Draws {
    /// A normal draw with this mean and standard deviation.
    fn normal(&mut self, mean: f64, sd: f64) -> f64;
    /// An exponential draw with this mean.
    fn exponential(&mut self, mean: f64) -> f64;
}

impl Draws for Stream {
    fn normal(&mut self, mean: f64, sd: f64) -> f64 {
        Stream::normal(self, mean, sd)
    }
    fn exponential(&mut self, mean: f64) -> f64 {
        Stream::exponential(self, mean)
    }
}

/// The `Synapse Attributes` of one cell, structure of arrays.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SynapseSet {
    pub syn_ids: Vec<u32>,
    pub syn_locs: Vec<f32>,
    pub syn_secs: Vec<u32>,
    pub syn_layers: Vec<i8>,
    pub syn_types: Vec<u8>,
    pub swc_types: Vec<u8>,
    pub syn_cdists: Vec<f32>,
}

impl SynapseSet {
    pub fn len(&self) -> usize {
        self.syn_ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.syn_ids.is_empty()
    }

    fn push(&mut self, loc: f64, sec: usize, layer: i8, syn_type: SynapseType, swc: SwcType, cdist: f64) {
        self.syn_ids.push(self.syn_ids.len() as u32);
        self.syn_locs.push(loc as f32);
        self.syn_secs.push(sec as u32);
        self.syn_layers.push(layer);
        self.syn_types.push(syn_type.code());
        self.swc_types.push(swc.code());
        self.syn_cdists.push(cdist as f32);
    }
}

/// Densities by layer index, resolved against the layer definitions.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerDensity {
    pub by_layer: BTreeMap<i8, Density>,
    pub default: Option<Density>,
    /// The entry listed last (layer or `default`), which MiV d2f14d4 uses for every layer.
    pub last: Option<Density>,
}

impl LayerDensity {
    /// The density of a segment in `layer`: its layer's entry, else `default`; with `last_listed`, whether
    /// there is one is decided the same way but the value is the last-listed entry's (MiV's closure).
    fn get(&self, layer: i8, last_listed: bool) -> Option<Density> {
        let own = if layer > -1 { self.by_layer.get(&layer).copied().or(self.default) } else { self.default };
        if last_listed {
            own.and(self.last)
        } else {
            own
        }
    }
}

/// Which of MiV-Simulator d2f14d4's placement quirks to reproduce (see the module comment).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Quirks {
    /// Every layer takes the density of the last-listed layer entry.
    pub last_listed_density: bool,
    /// A later segment's first gap is added to the position past the previous segment's end.
    pub carry_over: bool,
}

impl Quirks {
    /// Both quirks: `distribute_poisson_synapses` as MiV d2f14d4 runs it.
    pub const fn miv() -> Quirks {
        Quirks { last_listed_density: true, carry_over: true }
    }
}

/// A population's density table with layer names resolved, in configuration order.
#[derive(Debug, Clone, PartialEq)]
pub struct DensityTable(pub Vec<(SwcType, Vec<(SynapseType, LayerDensity)>)>);

impl DensityTable {
    pub fn resolve(densities: &SynapseDensities, layers: &LayerDefinitions) -> Result<DensityTable, String> {
        let mut out = Vec::new();
        for (swc, by_type) in densities {
            let mut types = Vec::new();
            for (syn, by_layer) in by_type {
                let mut ld = LayerDensity { by_layer: BTreeMap::new(), default: None, last: None };
                for (name, d) in by_layer {
                    ld.last = Some(*d);
                    if name == "default" {
                        ld.default = Some(*d);
                    } else {
                        let idx =
                            layers.get(name).ok_or_else(|| format!("layer `{name}` is not in layer_definitions"))?;
                        ld.by_layer.insert(*idx, *d);
                    }
                }
                types.push((*syn, ld));
            }
            out.push((*swc, types));
        }
        Ok(DensityTable(out))
    }
}

/// Place the synapses of one cell. `stream` is the cell's own stream (keyed by gid).
pub fn distribute(
    m: &Morphology,
    table: &DensityTable,
    distribution: SynapseDistribution,
    quirks: Quirks,
    stream: &mut impl Draws,
) -> Result<SynapseSet, String> {
    let mut out = SynapseSet::default();
    for (swc, by_type) in &table.0 {
        let secs = m.sections_of(*swc);
        // Density and layer per (synapse type, section, segment): drawn syn type → section → segment.
        let mut dens: Vec<Vec<Vec<f64>>> = Vec::with_capacity(by_type.len());
        for (syn, ld) in by_type {
            let mut per_sec = Vec::with_capacity(secs.len());
            for &s in &secs {
                let sec = &m.sections[s];
                let mut per_seg = Vec::with_capacity(sec.nseg as usize);
                for k in 0..sec.nseg {
                    let layer = sec.layer_at(sec.segment_x(k));
                    let d = match ld.get(layer, quirks.last_listed_density) {
                        Some(d) => positive_density(d, stream).ok_or_else(|| {
                            format!(
                                "no positive {} density on {} in {MAX_DENSITY_DRAWS} draws (mean {}, variance {})",
                                syn.name(),
                                swc.name(),
                                d.mean,
                                d.variance
                            )
                        })?,
                        None => 0.0,
                    };
                    per_seg.push(d);
                }
                per_sec.push(per_seg);
            }
            dens.push(per_sec);
        }
        let order = m.placement_order(&secs);
        for (ti, (syn, _)) in by_type.iter().enumerate() {
            for &s in &order {
                let si = secs.binary_search(&s).expect("order holds the same sections");
                let d = &dens[ti][si];
                match distribution {
                    SynapseDistribution::Poisson => {
                        place_poisson(m, s, d, (*syn, *swc), quirks.carry_over, stream, &mut out)
                    }
                    SynapseDistribution::Uniform => place_uniform(m, s, d, *syn, *swc, &mut out),
                }
            }
        }
    }
    Ok(out)
}

/// `normal(mean, variance)` redrawn until positive (MiV uses "variance" as the standard deviation).
fn positive_density(d: Density, stream: &mut impl Draws) -> Option<f64> {
    (0..MAX_DENSITY_DRAWS).map(|_| stream.normal(d.mean, d.variance)).find(|&x| x > 0.0)
}

fn place_poisson(
    m: &Morphology,
    s: usize,
    dens: &[f64],
    (syn, swc): (SynapseType, SwcType),
    carry_over: bool,
    stream: &mut impl Draws,
    out: &mut SynapseSet,
) {
    let sec = &m.sections[s];
    let l = sec.length;
    if l <= 0.0 {
        return;
    }
    let half = 0.5 / sec.nseg as f64;
    let mut interval = 0.0f64;
    for (k, &d) in dens.iter().enumerate() {
        let x = sec.segment_x(k as u32);
        let (start, end) = ((x - half) * l, (x + half) * l);
        if d > 0.0 {
            let beta = 1.0 / d;
            interval = if interval > 0.0 {
                // A later segment: the next gap starts at the segment's start, or (MiV) at the position
                // already drawn past the previous segment's end (see the module comment).
                let from = if carry_over { interval } else { start };
                from + stream.exponential(beta)
            } else {
                // MiV draws until a gap lands in the segment. When that is too unlikely (a tiny density, or a
                // segment far from the section's start), the same law, an exponential conditioned on
                // [start, end), comes from one draw: start + (X mod width) for X ~ Exp(beta) (memorylessness).
                (0..MAX_PLACEMENT_DRAWS)
                    .map(|_| stream.exponential(beta))
                    .find(|&v| v >= start && v < end)
                    .unwrap_or_else(|| start + stream.exponential(beta) % (end - start))
            };
            let layer = sec.layer_at(x);
            while interval < end {
                if interval >= start {
                    let loc = interval / l;
                    if loc < 1.0 {
                        out.push(loc, s, layer, syn, swc, norm(sec.point_at(loc)));
                    }
                }
                interval += stream.exponential(beta);
            }
        } else {
            interval = end;
        }
    }
}

/// `floor(density · L / nseg)` synapses evenly spaced in each segment.
fn place_uniform(m: &Morphology, s: usize, dens: &[f64], syn: SynapseType, swc: SwcType, out: &mut SynapseSet) {
    let sec = &m.sections[s];
    let n = sec.nseg as f64;
    for (k, &d) in dens.iter().enumerate() {
        let x = sec.segment_x(k as u32);
        let count = d * sec.length / n;
        let whole = count.floor() as usize;
        let layer = sec.layer_at(x);
        for c in 0..whole {
            let loc = x - 0.5 / n + (1.0 / n) * (c as f64 + 1.0) / count.ceil();
            if loc < 1.0 {
                out.push(loc, s, layer, syn, swc, norm(sec.point_at(loc)));
            }
        }
    }
}

fn norm(p: [f64; 3]) -> f64 {
    (p[0] * p[0] + p[1] * p[1] + p[2] * p[2]).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algo::morphology::tests::small_tree;
    use crate::algo::morphology::TreeData;
    use miv_config::SegmentRule;
    use miv_partition::Purpose;

    fn layers() -> LayerDefinitions {
        [("SO", 5), ("SP", 6), ("SR", 8), ("SLM", 9)].map(|(k, v)| (k.to_string(), v)).into()
    }

    fn table(yaml: &str) -> DensityTable {
        let d: SynapseDensities = serde_norway::from_str(yaml).unwrap();
        DensityTable::resolve(&d, &layers()).unwrap()
    }

    /// A straight apical cable of 2000 µm whose first half is in SR and second half in SLM.
    fn cable() -> TreeData {
        let n = 201;
        TreeData {
            x: vec![0.0; n],
            y: (0..n).map(|i| i as f32 * 10.0).collect(),
            z: vec![0.0; n],
            radius: vec![1.0; n],
            layer: (0..n).map(|i| if i < 100 { 8 } else { 9 }).collect(),
            parent: (0..n as i32).map(|i| i - 1).collect(),
            swc_type: vec![4; n],
            sections: vec![(0..n as u32).collect()],
            src: vec![],
            dst: vec![],
        }
    }

    #[test]
    fn poisson_counts_match_density_times_length_per_layer() {
        let t = table("apical: {excitatory: {SR: {mean: 3.0, variance: 0.0001}, SLM: {mean: 0.5, variance: 0.0001}}}");
        let m = Morphology::new(&cable(), SegmentRule::Fixed(20)).unwrap();
        let (mut sr, mut slm) = (0usize, 0usize);
        let cells = 40;
        for gid in 0..cells {
            let s = distribute(
                &m,
                &t,
                SynapseDistribution::Poisson,
                Quirks::default(),
                &mut Stream::new(0, Purpose::named("syn"), gid),
            )
            .unwrap();
            assert!(s.syn_locs.windows(2).all(|w| w[0] <= w[1]), "one section walked once: locations increase");
            for (&loc, &layer) in s.syn_locs.iter().zip(&s.syn_layers) {
                assert_eq!(layer, if loc < 0.5 { 8 } else { 9 }, "loc {loc}");
            }
            sr += s.syn_layers.iter().filter(|&&l| l == 8).count();
            slm += s.syn_layers.iter().filter(|&&l| l == 9).count();
        }
        // Poisson: mean = density·L per cell, sd = sqrt(mean); over `cells` cells.
        for (got, dens) in [(sr, 3.0), (slm, 0.5)] {
            let mean = dens * 1000.0 * cells as f64;
            assert!((got as f64 - mean).abs() < 3.0 * mean.sqrt(), "{got} vs {mean}");
        }
    }

    /// MiV's quirks: every layer takes the last-listed density (SLM's 0.5 in SR too), and the carry-over of
    /// the position past a segment's end loses synapses at every segment boundary.
    #[test]
    fn miv_quirks_use_the_last_listed_density() {
        let t = table("apical: {excitatory: {SR: {mean: 3.0, variance: 0.0001}, SLM: {mean: 0.5, variance: 0.0001}}}");
        let cells = 40u64;
        let count = |quirks: Quirks, nseg: u32| {
            let m = Morphology::new(&cable(), SegmentRule::Fixed(nseg)).unwrap();
            let (mut sr, mut slm) = (0usize, 0usize);
            for gid in 0..cells {
                let mut st = Stream::new(0, Purpose::named("syn"), gid);
                let s = distribute(&m, &t, SynapseDistribution::Poisson, quirks, &mut st).unwrap();
                sr += s.syn_layers.iter().filter(|&&l| l == 8).count();
                slm += s.syn_layers.iter().filter(|&&l| l == 9).count();
            }
            (sr as f64 / cells as f64, slm as f64 / cells as f64)
        };
        // The density quirk alone: Poisson at SLM's 0.5/µm on both halves.
        let density_only = Quirks { last_listed_density: true, carry_over: false };
        let (sr, slm) = count(density_only, 20);
        for got in [sr, slm] {
            let mean = 0.5 * 1000.0;
            assert!((got - mean).abs() < 3.0 * (mean / cells as f64).sqrt(), "{got} vs {mean}");
        }
        // Both quirks: 20 segments of 100 µm at 0.5/µm, each later segment loses the overshoot past its
        // start (mean 2 µm, one gap): about one synapse per boundary fewer, still near 0.5/µm.
        let (sr_miv, slm_miv) = count(Quirks::miv(), 20);
        assert!(sr_miv < sr && slm_miv < slm, "carry-over loses synapses: {sr_miv} {slm_miv} vs {sr} {slm}");
        for got in [sr_miv, slm_miv] {
            assert!((got - 490.0).abs() < 3.0 * (500.0 / cells as f64).sqrt() + 5.0, "{got}");
        }
        // Defaults unchanged: the layers' own densities.
        let (sr, slm) = count(Quirks::default(), 20);
        assert!((sr - 3000.0).abs() < 3.0 * (3000.0 / cells as f64).sqrt(), "{sr}");
        assert!((slm - 500.0).abs() < 3.0 * (500.0 / cells as f64).sqrt(), "{slm}");
    }

    /// A sparse segment before a dense one: the carry-over starts the dense segment far past its start.
    #[test]
    fn carry_over_after_a_sparse_segment() {
        let t =
            table("apical: {excitatory: {SR: {mean: 0.01, variance: 0.00001}, SLM: {mean: 5.0, variance: 0.0001}}}");
        let m = Morphology::new(&cable(), SegmentRule::Fixed(2)).unwrap();
        let (mut plain, mut miv) = (0usize, 0usize);
        let cells = 40u64;
        for gid in 0..cells {
            for (quirks, n) in
                [(Quirks::default(), &mut plain), (Quirks { carry_over: true, ..Quirks::default() }, &mut miv)]
            {
                let mut st = Stream::new(0, Purpose::named("syn"), gid);
                let s = distribute(&m, &t, SynapseDistribution::Poisson, quirks, &mut st).unwrap();
                *n += s.syn_layers.iter().filter(|&&l| l == 9).count();
            }
        }
        // SLM: 5/µm × 1000 µm by default; with the carry-over the first SR synapse (mean 100 µm apart at
        // 0.01/µm) overshoots into SLM's segment by about 100 µm, losing about 500 synapses per cell.
        let plain = plain as f64 / cells as f64;
        let miv = miv as f64 / cells as f64;
        assert!((plain - 5000.0).abs() < 3.0 * (5000.0 / cells as f64).sqrt(), "{plain}");
        assert!(plain - miv > 250.0, "{plain} vs {miv}");
    }

    /// A dense layer far from the section's start with nothing before it: a gap drawn from the start almost
    /// never lands in its first segment (probability e^-5000), so the first synapse comes from the
    /// conditioned draw, and the layer still gets its density.
    #[test]
    fn first_synapse_far_from_the_start_is_placed() {
        let t = table("apical: {excitatory: {SLM: {mean: 5.0, variance: 0.0001}}}");
        let m = Morphology::new(&cable(), SegmentRule::Fixed(2)).unwrap();
        let cells = 20u64;
        let mut n = 0usize;
        for gid in 0..cells {
            let mut st = Stream::new(0, Purpose::named("syn"), gid);
            let s = distribute(&m, &t, SynapseDistribution::Poisson, Quirks::default(), &mut st).unwrap();
            assert!(s.syn_locs.iter().all(|&l| (0.5..1.0).contains(&l)), "only SLM (second half)");
            assert!(s.syn_locs.first().is_some_and(|&l| l < 0.5 + 0.01), "first synapse near SLM's start");
            n += s.syn_locs.len();
        }
        let per_cell = n as f64 / cells as f64;
        assert!((per_cell - 5000.0).abs() < 3.0 * (5000.0 / cells as f64).sqrt(), "{per_cell}");
    }

    /// Draws recorded from MiV's `distribute_poisson_synapses`, returned in order; each call must ask for
    /// the same distribution with the same parameter MiV asked for.
    struct Replay<'a> {
        draws: &'a [serde_json::Value],
        next: usize,
    }

    impl Replay<'_> {
        fn take(&mut self, kind: &str, params: &[f64]) -> f64 {
            let d = self
                .draws
                .get(self.next)
                .unwrap_or_else(|| panic!("draw {} beyond MiV's {}", self.next, self.draws.len()));
            let d = d.as_array().unwrap();
            assert_eq!(d[0].as_str().unwrap(), kind, "draw {}", self.next);
            for (k, p) in params.iter().enumerate() {
                let want = d[1 + k].as_f64().unwrap();
                assert!(
                    (want - p).abs() <= 1e-12 * want.abs().max(1.0),
                    "draw {} parameter {k}: {p} vs MiV {want}",
                    self.next
                );
            }
            self.next += 1;
            d[1 + params.len()].as_f64().unwrap()
        }
    }

    impl Draws for Replay<'_> {
        fn normal(&mut self, mean: f64, sd: f64) -> f64 {
            self.take("normal", &[mean, sd])
        }
        fn exponential(&mut self, mean: f64) -> f64 {
            self.take("exponential", &[mean])
        }
    }

    /// `Quirks::miv()` against MiV-Simulator d2f14d4's own function (tests/reference/miv-synapses): fed
    /// the same random numbers, every draw is asked for in MiV's order with MiV's parameters (so SR's
    /// density is drawn from SLM's entry), and the same synapses come out.
    #[test]
    fn miv_quirks_reproduce_mivs_own_function() {
        let doc: serde_json::Value =
            serde_json::from_str(include_str!("../../../tests/reference/miv-synapses/distribute_poisson.json"))
                .unwrap();
        let n = 201;
        let tree = TreeData {
            x: vec![0.0; n],
            y: (0..n).map(|i| i as f32 * 10.0).collect(),
            z: vec![0.0; n],
            radius: vec![1.0; n],
            layer: (0..n).map(|i| if i < 100 { 8 } else { 9 }).collect(),
            parent: (0..n as i32).map(|i| i - 1).collect(),
            swc_type: vec![4; n],
            sections: vec![(0..=100).collect(), (100..=200).collect()],
            src: vec![0],
            dst: vec![1],
        };
        let m = Morphology::new(&tree, SegmentRule::Fixed(doc["nseg"].as_u64().unwrap() as u32)).unwrap();
        // The table in MiV's (file) order; serde_json's map would sort SLM before SR.
        let yaml = "apical: {excitatory: {SR: {mean: 3.0, variance: 0.5}, SLM: {mean: 0.5, variance: 0.1}}, \
                    inhibitory: {default: {mean: 0.2, variance: 0.05}}}";
        let d: SynapseDensities = serde_norway::from_str(yaml).unwrap();
        assert_eq!(serde_json::to_value(&d).unwrap(), doc["density"], "the density table MiV was given");
        let t = DensityTable::resolve(&d, &layers()).unwrap();
        let draws = doc["draws"].as_array().unwrap();
        let mut replay = Replay { draws, next: 0 };
        let s = distribute(&m, &t, SynapseDistribution::Poisson, Quirks::miv(), &mut replay).unwrap();
        assert_eq!(replay.next, draws.len(), "every draw of MiV's used");
        let want = &doc["synapses"];
        let col = |k: &str| -> Vec<f64> { want[k].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect() };
        let as_f64 = |v: &[u32]| v.iter().map(|&x| x as f64).collect::<Vec<_>>();
        assert_eq!(as_f64(&s.syn_ids), col("syn_ids"));
        assert_eq!(as_f64(&s.syn_secs), col("syn_secs"));
        assert_eq!(s.syn_layers.iter().map(|&x| x as f64).collect::<Vec<_>>(), col("syn_layers"));
        assert_eq!(s.syn_types.iter().map(|&x| x as f64).collect::<Vec<_>>(), col("syn_types"));
        assert_eq!(s.swc_types.iter().map(|&x| x as f64).collect::<Vec<_>>(), col("swc_types"));
        for (k, (&got, want)) in s.syn_locs.iter().zip(col("syn_locs")).enumerate() {
            assert!((got as f64 - want).abs() < 1e-6, "synapse {k}: loc {got} vs MiV {want}");
        }
    }

    #[test]
    fn order_ids_and_defaults() {
        let t = table("apical: {inhibitory: {default: {mean: 0.5, variance: 0.1}}}\nsoma: {inhibitory: {default: {mean: 0.5, variance: 0.1}}}");
        let m = Morphology::new(&small_tree(), SegmentRule::Fixed(1)).unwrap();
        let s = distribute(
            &m,
            &t,
            SynapseDistribution::Poisson,
            Quirks::default(),
            &mut Stream::new(1, Purpose::named("syn"), 3),
        )
        .unwrap();
        assert_eq!(s.syn_ids, (0..s.len() as u32).collect::<Vec<_>>());
        // Table order: every apical synapse (section 2) before every soma synapse (section 0).
        let first_soma = s.syn_secs.iter().position(|&x| x == 0).unwrap_or(s.len());
        assert!(s.syn_secs[..first_soma].iter().all(|&x| x == 2) && s.syn_secs[first_soma..].iter().all(|&x| x == 0));
        assert!(s.swc_types[..first_soma].iter().all(|&t| t == 4));
        assert!(s.syn_types.iter().all(|&t| t == 1));
        // cdist is the distance of the (translated) point from the origin: apical starts at y = 10.
        for (&loc, (&sec, &cd)) in s.syn_locs.iter().zip(s.syn_secs.iter().zip(&s.syn_cdists)) {
            if sec == 2 {
                assert!((cd - (10.0 + 100.0 * loc)).abs() < 1e-3, "{loc} {cd}");
            }
        }
        // Same key, same synapses.
        let again = distribute(
            &m,
            &t,
            SynapseDistribution::Poisson,
            Quirks::default(),
            &mut Stream::new(1, Purpose::named("syn"), 3),
        )
        .unwrap();
        assert_eq!(s, again);
    }

    #[test]
    fn uniform_places_floor_of_expected_count() {
        let t = table("apical: {excitatory: {SR: {mean: 2.0, variance: 0.0}, SLM: {mean: 1.0, variance: 0.0}}}");
        let m = Morphology::new(&cable(), SegmentRule::Fixed(4)).unwrap();
        let s = distribute(
            &m,
            &t,
            SynapseDistribution::Uniform,
            Quirks::default(),
            &mut Stream::new(0, Purpose::named("u"), 0),
        )
        .unwrap();
        // Segments of 500 µm: two in SR (1000 synapses each), two in SLM (500 each, the last loc = 1 dropped).
        assert_eq!(s.syn_layers.iter().filter(|&&l| l == 8).count(), 2000);
        assert_eq!(s.syn_layers.iter().filter(|&&l| l == 9).count(), 999);
    }

    #[test]
    fn impossible_density_is_an_error() {
        let t = table("apical: {excitatory: {default: {mean: -5.0, variance: 0.1}}}");
        let m = Morphology::new(&cable(), SegmentRule::Fixed(1)).unwrap();
        let e = distribute(
            &m,
            &t,
            SynapseDistribution::Poisson,
            Quirks::default(),
            &mut Stream::new(0, Purpose::named("u"), 0),
        )
        .unwrap_err();
        assert!(e.contains("no positive excitatory density on apical"), "{e}");
    }
}
