//! Single-cell models (`miv cell`, docs/cell-yaml.md): a morphology, biophysics, simulation settings and probes.

use super::*;

/// Events to deliver to one point process: its target index, weights and times.
#[derive(Debug, Clone, PartialEq)]
pub struct EventTrain {
    pub target: usize,
    pub weights: Vec<f64>,
    pub times: Vec<f64>,
}

/// A loaded, checked model.
#[derive(Debug, Clone)]
pub struct CellModel {
    pub cell: CableCell,
    pub options: SimOptions,
    pub tstop: f64,
    pub v_init: f64,
    pub record_dt: f64,
    /// (column name, probe)
    pub probes: Vec<(String, ProbeSpec)>,
    pub events: Vec<EventTrain>,
    pub detector_names: Vec<String>,
    /// Mechanisms compiled from `mechanisms_path` (empty without it).
    pub mechanisms: miv_nmodl::Library,
}

/// Read and check a model file.
pub fn load_model(path: &Path) -> Result<CellModel, ModelError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ModelError {
        file: file.clone(),
        key: "(file)".into(),
        message: format!("cannot read: {e}"),
    })?;
    parse_model(&text, &file, path.parent().unwrap_or(Path::new(".")))
}

/// Check a model given as YAML text; `file` names it in errors, `base` resolves relative paths.
pub fn parse_model(text: &str, file: &str, base: &Path) -> Result<CellModel, ModelError> {
    let cx = Ctx { file };
    let y: ModelYaml = cx.parse_yaml(text)?;

    let mechanisms = match &y.mechanisms_path {
        Some(dir) => {
            miv_nmodl::Library::load_dir(&base.join(dir)).map_err(|e| cx.err("mechanisms_path", e.to_string()))?
        }
        None => miv_nmodl::Library::default(),
    };
    let catalogue = &catalogue_of(&mechanisms);

    // Simulation settings.
    let s = &y.simulation;
    if !(s.dt > 0.0 && s.dt.is_finite()) {
        return Err(cx.err("simulation.dt", format!("must be a positive number of ms, got {}", s.dt)));
    }
    if !(s.tstop >= 0.0 && s.tstop.is_finite()) {
        return Err(cx.err("simulation.tstop", format!("must be >= 0 ms, got {}", s.tstop)));
    }
    if !s.celsius.is_finite() {
        return Err(cx.err("simulation.celsius", "must be a number"));
    }
    let record_dt = s.record_dt.unwrap_or(s.dt);
    let ratio = record_dt / s.dt;
    if !(record_dt > 0.0) || (ratio - ratio.round()).abs() > 1e-9 || ratio.round() < 1.0 {
        return Err(
            cx.err("simulation.record_dt", format!("must be a positive multiple of dt ({}), got {record_dt}", s.dt))
        );
    }
    let mut globals = Vec::new();
    for (mech, values) in &s.globals {
        let info = catalogue.get(mech).ok_or_else(|| {
            cx.err(
                format!("simulation.globals.{mech}"),
                format!("unknown mechanism (known: {})", catalogue.names().join(", ")),
            )
        })?;
        for (g, v) in values {
            if info.global_index(g).is_none() {
                let known: Vec<&str> = info.globals.iter().map(|p| p.name.as_str()).collect();
                return Err(cx.err(
                    format!("simulation.globals.{mech}.{g}"),
                    format!("{mech} has no global {g:?} (it has: {})", known.join(", ")),
                ));
            }
            globals.push((mech.clone(), g.clone(), *v));
        }
    }

    let morphology = build_morphology(&cx, &y.morphology, base)?;
    let mut cell = CableCell::new(morphology).map_err(|e| morphology_error(&cx, &e))?;
    let names: Vec<String> = cell.morphology.sections.iter().map(|s| s.name.clone()).collect();
    let mut section_nseg = Vec::new();
    if let Some(secs) = &y.morphology.sections {
        for (i, s) in secs.iter().enumerate() {
            match s.nseg {
                Some(n) if !(1..=MAX_NSEG).contains(&n) => {
                    return Err(cx.err(
                        format!("morphology.sections[{i}].nseg"),
                        format!("must be from 1 to {MAX_NSEG} (NEURON's limit), got {n}"),
                    ))
                }
                Some(n) => section_nseg.push((i, n)),
                None => {}
            }
        }
    }
    let bio = Biophysics {
        discretization: y.discretization.as_ref(),
        properties: &y.properties,
        mechanisms: &y.mechanisms,
        ions: &y.ions,
        point_processes: &y.point_processes,
        detectors: &y.detectors,
    };
    let applied = apply_biophysics(&cx, &mut cell, &bio, catalogue, &section_nseg)?;
    let (events, point_names, detector_names) = (applied.events, applied.point_names, applied.detector_names);

    // Probes.
    let mut probes = Vec::new();
    let mut membrane_current = false;
    for (i, p) in y.probes.iter().enumerate() {
        let key = format!("probes[{i}]");
        let at = |cx: &Ctx| -> Result<Location, ModelError> {
            let a = p
                .at
                .as_deref()
                .ok_or_else(|| cx.err(format!("{key}.at"), format!("variable {:?} needs a location", p.variable)))?;
            parse_location(cx, &cell, a, &format!("{key}.at"))
        };
        let spec = match p.variable.as_str() {
            "v" => ProbeSpec::Voltage { cell: 0, location: at(&cx)? },
            "i_membrane" => {
                membrane_current = true;
                ProbeSpec::MembraneCurrent { cell: 0, location: at(&cx)? }
            }
            other => {
                let Some((owner, var)) = other.split_once('.') else {
                    return Err(cx.err(
                        format!("{key}.variable"),
                        format!(
                            "{other:?}: expected v, i_membrane, <mechanism>.<variable> or <point process>.<variable>"
                        ),
                    ));
                };
                if let Some(t) = point_names.iter().position(|n| n == owner) {
                    let info = catalogue.get(&cell.points[t].mechanism).unwrap();
                    if info.state_index(var).is_none() {
                        return Err(cx.err(
                            format!("{key}.variable"),
                            format!("{} has no variable {var:?} (it has: {})", info.name, info.states.join(", ")),
                        ));
                    }
                    ProbeSpec::TargetState { cell: 0, target: t, variable: var.into() }
                } else if let Some(info) = catalogue.get(owner).filter(|i| i.kind == MechanismKind::Density) {
                    if info.state_index(var).is_none() {
                        return Err(cx.err(
                            format!("{key}.variable"),
                            format!("{} has no variable {var:?} (it has: {})", info.name, info.states.join(", ")),
                        ));
                    }
                    let location = at(&cx)?;
                    if !cell.density.iter().any(|d| d.section == location.section && d.mechanism == owner) {
                        return Err(cx.err(
                            format!("{key}.at"),
                            format!("{owner} is not inserted in section {:?}", names[location.section]),
                        ));
                    }
                    ProbeSpec::DensityState { cell: 0, location, mechanism: owner.into(), variable: var.into() }
                } else {
                    return Err(cx.err(
                        format!("{key}.variable"),
                        format!("{owner:?} is neither a point process name nor a density mechanism"),
                    ));
                }
            }
        };
        let name = p.name.clone().unwrap_or_else(|| match &p.at {
            Some(a) => format!("{}@{a}", p.variable),
            None => p.variable.clone(),
        });
        probes.push((name, spec));
    }

    let options = SimOptions {
        dt: s.dt,
        method: s.method.into(),
        celsius: s.celsius,
        spike_rule: s.spike_rule.into(),
        delivery_rule: s.delivery_rule.into(),
        membrane_current,
        geometry: false,
        globals,
    };
    Ok(CellModel {
        cell,
        options,
        tstop: s.tstop,
        v_init: s.v_init,
        record_dt,
        probes,
        events,
        detector_names,
        mechanisms,
    })
}
