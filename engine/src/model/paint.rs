//! Biophysics applied to a cable cell: properties, discretisation, density mechanisms, ions, point processes,
//! detectors, each on regions of sections; locations and probes named in text.

use super::*;

/// The biophysics blocks of a model or template.
pub(super) struct Biophysics<'a> {
    pub(super) discretization: Option<&'a DiscretizationSpec>,
    pub(super) properties: &'a [PropertiesYaml],
    pub(super) mechanisms: &'a [DensityYaml],
    pub(super) ions: &'a [IonYaml],
    pub(super) point_processes: &'a [PointYaml],
    pub(super) detectors: &'a [DetectorYaml],
}

/// What applying biophysics produced besides the cell itself.
pub(super) struct Applied {
    pub(super) events: Vec<EventTrain>,
    pub(super) point_names: Vec<String>,
    pub(super) detector_names: Vec<String>,
}

/// Variables of per-section conditions (`if`): the section's diameter at its middle (um), its length (um) and
/// the path distance of its middle from the root's 0-end (um).
pub(super) const SECTION_VARIABLES: [&str; 3] = ["diam", "L", "distance"];

/// Apply properties, discretisation (then the per-section `nseg` overrides), density mechanisms, ions, point
/// processes and detectors to `cell`, in that order.
pub(super) fn apply_biophysics(
    cx: &Ctx,
    cell: &mut CableCell,
    y: &Biophysics,
    catalogue: &Catalogue,
    section_nseg: &[(usize, usize)],
) -> Result<Applied, ModelError> {
    let names: Vec<String> = cell.morphology.sections.iter().map(|s| s.name.clone()).collect();
    // Passive properties, in order (later entries win).
    for (i, p) in y.properties.iter().enumerate() {
        let key = format!("properties[{i}]");
        let secs = select(cx, cell, &p.region, &format!("{key}.region"))?;
        if let Some(ra) = p.ra {
            if !(ra > 0.0 && ra.is_finite()) {
                return Err(cx.err(format!("{key}.Ra"), format!("must be positive (ohm cm), got {ra}")));
            }
            secs.iter().for_each(|&s| cell.ra[s] = ra);
        }
        if let Some(cm) = p.cm {
            if !(cm >= 0.0 && cm.is_finite()) {
                return Err(cx.err(format!("{key}.cm"), format!("must be >= 0 (uF/cm2), got {cm}")));
            }
            secs.iter().for_each(|&s| cell.cm[s] = cm);
        }
    }

    // Discretisation rules in order, then per-section nseg.
    if let Some(spec) = y.discretization {
        for (key, d) in spec.rules() {
            let secs = match &d.region {
                Some(r) => select(cx, cell, r, &format!("{key}.region"))?,
                None => (0..cell.section_count()).collect(),
            };
            match (d.nseg, d.d_lambda) {
                (Some(_), Some(_)) => return Err(cx.err(key, "give either nseg or d_lambda, not both")),
                (Some(n), None) if !(1..=MAX_NSEG).contains(&n) => {
                    return Err(cx
                        .err(format!("{key}.nseg"), format!("must be from 1 to {MAX_NSEG} (NEURON's limit), got {n}")))
                }
                (Some(n), None) => secs.iter().for_each(|&s| cell.nseg[s] = n),
                (None, Some(dl)) => {
                    if !(dl > 0.0) || !(d.frequency > 0.0) {
                        return Err(cx.err(format!("{key}.d_lambda"), "d_lambda and frequency must be positive"));
                    }
                    for (what, v) in [("Ra", d.ra), ("cm", d.cm)] {
                        if let Some(v) = v {
                            if !(v > 0.0 && v.is_finite()) {
                                return Err(cx.err(format!("{key}.{what}"), format!("must be positive, got {v}")));
                            }
                        }
                    }
                    for &s in &secs {
                        let (ra, cm) = (d.ra.unwrap_or(cell.ra[s]), d.cm.unwrap_or(cell.cm[s]));
                        cell.nseg[s] = nseg_d_lambda(&cell.morphology.sections[s], ra, cm, dl, d.frequency);
                    }
                }
                (None, None) => return Err(cx.err(key, "expected nseg or d_lambda")),
            }
        }
    }
    for &(s, n) in section_nseg {
        cell.nseg[s] = n;
    }
    let comp = cell.compartments();

    // Density mechanisms.
    for (i, m) in y.mechanisms.iter().enumerate() {
        let key = format!("mechanisms[{i}]");
        let info = mechanism_of(cx, catalogue, &m.mechanism, MechanismKind::Density, &format!("{key}.mechanism"))?;
        let mut secs = select(cx, cell, &m.region, &format!("{key}.region"))?;
        if let Some(cond) = &m.condition {
            let e =
                Expr::parse(cond, &SECTION_VARIABLES).map_err(|err| cx.err(format!("{key}.if"), err.to_string()))?;
            secs.retain(|&s| {
                let mid = section_middle(&comp, s);
                e.eval(&[comp.diam[mid], comp.sections[s].length, comp.distance[mid]]) != 0.0
            });
        }
        let mut exprs = Vec::new();
        for (p, v) in &m.params {
            if info.param_index(p).is_none() {
                return Err(cx.err(
                    format!("{key}.params.{p}"),
                    format!("{} has no parameter {p:?} (it has: {})", info.name, info.param_names()),
                ));
            }
            let value = match v {
                ValueYaml::Number(x) => Segmentwise::Constant(*x),
                ValueYaml::Expression(e) => Segmentwise::Expr(
                    Expr::parse(e, &SEGMENT_VARIABLES)
                        .map_err(|err| cx.err(format!("{key}.params.{p}"), err.to_string()))?,
                ),
            };
            exprs.push((p.clone(), value));
        }
        for &s in &secs {
            let params = exprs
                .iter()
                .map(|(p, v)| {
                    let values = match v {
                        Segmentwise::Constant(x) => Values::Uniform(*x),
                        Segmentwise::Expr(e) => Values::PerSegment(segment_values(&comp, s, e)),
                    };
                    if let Values::PerSegment(vals) = &values {
                        if let Some(bad) = vals.iter().find(|x| !x.is_finite()) {
                            return Err(cx.err(
                                format!("{key}.params.{p}"),
                                format!("evaluates to {bad} in section {:?}", names[s]),
                            ));
                        }
                    }
                    Ok((p.clone(), values))
                })
                .collect::<Result<Vec<_>, _>>()?;
            // A later entry for the same mechanism and section overrides (NEURON: insert is idempotent and the
            // last assignment wins).
            if let Some(prev) = cell.density.iter_mut().find(|d| d.section == s && d.mechanism == m.mechanism) {
                for (p, v) in params {
                    match prev.params.iter_mut().find(|(q, _)| *q == p) {
                        Some(slot) => slot.1 = v,
                        None => prev.params.push((p, v)),
                    }
                }
            } else {
                cell.density.push(DensityPlacement { section: s, mechanism: m.mechanism.clone(), params });
            }
        }
    }

    // Ions.
    for (i, ion) in y.ions.iter().enumerate() {
        let key = format!("ions[{i}]");
        if ion.ion.is_empty() || !ion.ion.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(cx.err(format!("{key}.ion"), format!("{:?} is not an ion name", ion.ion)));
        }
        for (what, v) in [("conc_in", ion.conc_in), ("conc_out", ion.conc_out)] {
            if let Some(c) = v {
                if !(c > 0.0) {
                    return Err(cx.err(format!("{key}.{what}"), format!("must be positive (mM), got {c}")));
                }
            }
        }
        for s in select(cx, cell, &ion.region, &format!("{key}.region"))? {
            cell.ions.push(IonSetting {
                section: s,
                ion: ion.ion.clone(),
                erev: ion.erev,
                conc_in: ion.conc_in,
                conc_out: ion.conc_out,
            });
        }
    }

    // Point processes and their events.
    let mut events = Vec::new();
    let mut point_names: Vec<String> = Vec::new();
    for (i, p) in y.point_processes.iter().enumerate() {
        let key = format!("point_processes[{i}]");
        if point_names.contains(&p.name) {
            return Err(cx.err(format!("{key}.name"), format!("{:?} is used by another point process", p.name)));
        }
        let info = mechanism_of(cx, catalogue, &p.mechanism, MechanismKind::Point, &format!("{key}.mechanism"))?;
        let location = parse_location(cx, cell, &p.at, &format!("{key}.at"))?;
        for k in p.params.keys() {
            if info.param_index(k).is_none() {
                return Err(cx.err(
                    format!("{key}.params.{k}"),
                    format!("{} has no parameter {k:?} (it has: {})", info.name, info.param_names()),
                ));
            }
        }
        let target = cell.points.len();
        cell.points.push(PointPlacement {
            location,
            mechanism: p.mechanism.clone(),
            params: p.params.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        });
        point_names.push(p.name.clone());
        for (j, e) in p.events.iter().enumerate() {
            let ekey = format!("{key}.events[{j}]");
            if info.weights == 0 {
                return Err(cx.err(ekey, format!("{} takes no events", info.name)));
            }
            let weights = match &e.weights {
                WeightsYaml::One(w) => vec![*w],
                WeightsYaml::Many(w) => w.clone(),
            };
            if weights.is_empty() || weights.len() > info.weights {
                return Err(cx.err(
                    format!("{ekey}.weights"),
                    format!("{} takes {} weight(s), {} given", info.name, info.weights, weights.len()),
                ));
            }
            if let Some(t) = e.times.iter().find(|t| !(t.is_finite() && **t >= 0.0)) {
                return Err(cx.err(format!("{ekey}.times"), format!("event times must be >= 0 ms, got {t}")));
            }
            events.push(EventTrain { target, weights, times: e.times.clone() });
        }
    }

    // Detectors.
    let mut detector_names = Vec::new();
    for (i, d) in y.detectors.iter().enumerate() {
        let key = format!("detectors[{i}]");
        let location = parse_location(cx, cell, &d.at, &format!("{key}.at"))?;
        if !d.threshold.is_finite() {
            return Err(cx.err(format!("{key}.threshold"), "must be a number (mV)"));
        }
        cell.detect(location, d.threshold);
        detector_names.push(d.name.clone().unwrap_or_else(|| d.at.clone()));
    }
    Ok(Applied { events, point_names, detector_names })
}

/// The node at the middle of section `s` (its centre node for odd nseg).
pub(super) fn section_middle(comp: &Compartments, s: usize) -> usize {
    let sec = comp.sections[s];
    sec.first as usize + ((sec.nseg as usize) / 2).min(sec.nseg.saturating_sub(1) as usize)
}

/// Variables of parameter expressions: path distance from the root's 0-end (um), arc position in the section,
/// segment diameter (um), section length (um).
pub(super) const SEGMENT_VARIABLES: [&str; 4] = ["distance", "x", "diam", "L"];

pub(super) enum Segmentwise {
    Constant(f64),
    Expr(Expr),
}

pub(super) fn segment_values(comp: &Compartments, section: usize, e: &Expr) -> Vec<f64> {
    let s = comp.sections[section];
    (0..s.nseg as usize)
        .map(|j| {
            let n = s.first as usize + j;
            e.eval(&[comp.distance[n], comp.x[n], comp.diam[n], s.length])
        })
        .collect()
}

pub(super) fn mechanism_of<'c>(
    cx: &Ctx,
    cat: &'c Catalogue,
    name: &str,
    kind: MechanismKind,
    key: &str,
) -> Result<&'c miv_solvers::MechanismInfo, ModelError> {
    let info = cat
        .get(name)
        .ok_or_else(|| cx.err(key, format!("unknown mechanism {name:?} (known: {})", cat.names().join(", "))))?;
    if info.kind != kind {
        return Err(
            cx.err(key, format!("{name} is a {} mechanism, a {} is expected here", info.kind.as_str(), kind.as_str()))
        );
    }
    Ok(info)
}

/// Sections named by a region: `all`, a section type (`soma`, `axon`, `basal`, `apical`, `ais`, `hillock`,
/// `typeN`, or `dend` for basal + apical) or a section name; a list is the union.
pub(super) fn select(cx: &Ctx, cell: &CableCell, region: &RegionYaml, key: &str) -> Result<Vec<usize>, ModelError> {
    let names = match region {
        RegionYaml::One(n) => vec![n.clone()],
        RegionYaml::Many(v) => v.clone(),
    };
    let mut out = Vec::new();
    for n in &names {
        let secs = &cell.morphology.sections;
        let hit: Vec<usize> = (0..secs.len())
            .filter(|&s| {
                let t = secs[s].swc_type;
                n == "all"
                    || secs[s].name == *n
                    || swc::type_from_name(n) == Some(t)
                    || (n == "dend" && (t == swc::BASAL || t == swc::APICAL))
            })
            .collect();
        if hit.is_empty() {
            return Err(cx.err(key, format!("{n:?} matches no section (use all, a section type or a section name)")));
        }
        out.extend(hit);
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// `name(x)`, e.g. `soma(0.5)` or `apical[3](1)`.
pub(super) fn parse_location(cx: &Ctx, cell: &CableCell, text: &str, key: &str) -> Result<Location, ModelError> {
    let t = text.trim();
    let bad = || cx.err(key, format!("{text:?}: expected <section>(<x>), e.g. soma(0.5)"));
    let open = t.rfind('(').ok_or_else(bad)?;
    if !t.ends_with(')') {
        return Err(bad());
    }
    let (name, x) = (t[..open].trim(), t[open + 1..t.len() - 1].trim());
    let x: f64 = x.parse().map_err(|_| bad())?;
    if !(0.0..=1.0).contains(&x) {
        return Err(cx.err(key, format!("{text:?}: x must be within 0..1")));
    }
    let s = find_section(cell, name).ok_or_else(|| cx.err(key, format!("no section named {name:?}")))?;
    Ok(Location::new(s, x))
}

/// A section by name (`apical[3]`), or by type with an index counted within that type (`soma`, i.e. `soma[0]`;
/// `axon[-1]`, the last axon section, as hoc's `soma[-1]` idiom in MiV).
pub(super) fn find_section(cell: &CableCell, name: &str) -> Option<usize> {
    if let Some(s) = cell.morphology.find(name) {
        return Some(s);
    }
    let (ty, idx) = match name.split_once('[') {
        Some((t, rest)) => (t, rest.strip_suffix(']')?.trim().parse::<i64>().ok()?),
        None => (name, 0),
    };
    let t = swc::type_from_name(ty)?;
    let of_type = cell.sections_of_type(t);
    let i = if idx < 0 { of_type.len() as i64 + idx } else { idx };
    (0..of_type.len() as i64).contains(&i).then(|| of_type[i as usize])
}

/// A probe of a cell from text: `at` is `SECTION(x)`, `variable` is `v`, `i_membrane`, `MECH.VAR` (a density
/// mechanism at that location) or `TARGET.VAR` with TARGET a point-process index (`0.g`).
pub fn probe_spec(cell: &miv_solvers::CellDescription, at: &str, variable: &str) -> Result<ProbeSpec, String> {
    let miv_solvers::CellDescription::Cable(c) = cell else {
        return match variable.split_once('.') {
            Some((_, var)) => Ok(ProbeSpec::TargetState { cell: 0, target: 0, variable: var.into() }),
            None => Err(format!("{variable:?}: an artificial cell has no membrane; probe <target>.<variable>")),
        };
    };
    let cx = Ctx { file: "probe" };
    let location = || parse_location(&cx, c, at, "at").map_err(|e| e.message);
    match variable {
        "v" => Ok(ProbeSpec::Voltage { cell: 0, location: location()? }),
        "i_membrane" => Ok(ProbeSpec::MembraneCurrent { cell: 0, location: location()? }),
        other => {
            let (owner, var) = other
                .split_once('.')
                .ok_or_else(|| format!("{other:?}: expected v, i_membrane, MECH.VAR or TARGET.VAR"))?;
            match owner.parse::<usize>() {
                Ok(t) => Ok(ProbeSpec::TargetState { cell: 0, target: t, variable: var.into() }),
                Err(_) => Ok(ProbeSpec::DensityState {
                    cell: 0,
                    location: location()?,
                    mechanism: owner.into(),
                    variable: var.into(),
                }),
            }
        }
    }
}
