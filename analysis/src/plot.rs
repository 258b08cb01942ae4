//! Figures as PNG, drawn in Rust with `plotters`' bitmap backend: the spike raster and LFP trace of a run
//! (`miv plot`, `miv run --plot`) and the mean ± s.d. curves per condition of a study (the separation figure).
//!
//! Text uses DejaVu Sans embedded from the `dejavu` crate (plotters' `ab_glyph` feature), so no system font or
//! fontconfig is needed. The functions take plain data; reading results files is the caller's job.

use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::error::{AnalysisError, Result};

/// Figure sizes (pixels).
pub const RASTER_SIZE: (u32, u32) = (1200, 800);
pub const TRACE_SIZE: (u32, u32) = (1200, 500);
pub const CURVES_SIZE: (u32, u32) = (1000, 600);
pub const SCALING_SIZE: (u32, u32) = (1400, 600);

/// The colours given to populations and conditions, in order (matplotlib's `tab10`).
pub const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Colour of the `i`-th population or condition.
pub fn colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// The spikes of one population: parallel `times` (ms) and `gids`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PopulationSpikes {
    pub name: String,
    pub times: Vec<f64>,
    pub gids: Vec<u64>,
}

/// One series of points `(x, y)` with a legend label (a line with markers).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Line {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

/// One condition's curve: mean ± s.d. over trials at times `t`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Curve {
    pub label: String,
    pub t: Vec<f64>,
    pub mean: Vec<f64>,
    pub sd: Vec<f64>,
}

fn font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Registering a valid embedded TTF cannot fail; if it did, text would be missing, not the figure.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular());
    });
}

fn err<E: std::fmt::Display>(path: &Path) -> impl Fn(E) -> AnalysisError + '_ {
    move |e| AnalysisError::Plot { path: path.to_path_buf(), msg: e.to_string() }
}

fn range(lo: f64, hi: f64) -> std::ops::Range<f64> {
    if lo.is_finite() && hi.is_finite() && hi > lo {
        lo..hi
    } else if lo.is_finite() {
        lo - 1.0..lo + 1.0
    } else {
        0.0..1.0
    }
}

fn area(path: &Path, size: (u32, u32)) -> Result<DrawingArea<BitMapBackend<'_>, Shift>> {
    font();
    let root = BitMapBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE).map_err(err(path))?;
    Ok(root)
}

/// A spike raster: one dot per spike at (time, gid), one colour per population, legend with the spike counts.
/// `t_end` fixes the time axis (else the last spike sets it).
pub fn raster(path: &Path, title: &str, pops: &[PopulationSpikes], t_end: Option<f64>) -> Result<()> {
    let root = area(path, RASTER_SIZE)?;
    let t_hi = t_end.unwrap_or_else(|| pops.iter().flat_map(|p| p.times.iter().copied()).fold(0.0, f64::max));
    let gids = pops.iter().flat_map(|p| p.gids.iter().copied());
    let (g_lo, g_hi) = gids.fold((u64::MAX, 0u64), |(lo, hi), g| (lo.min(g), hi.max(g)));
    let (g_lo, g_hi) = if g_lo > g_hi { (0.0, 1.0) } else { (g_lo as f64 - 0.5, g_hi as f64 + 0.5) };
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 24))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(range(0.0, t_hi), range(g_lo, g_hi))
        .map_err(err(path))?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("time (ms)")
        .y_desc("gid")
        .label_style(("sans-serif", 16))
        .draw()
        .map_err(err(path))?;
    for (i, p) in pops.iter().enumerate() {
        let c = colour(i);
        let dots = p.times.iter().zip(&p.gids).map(|(&t, &g)| Circle::new((t, g as f64), 2, c.filled()));
        chart
            .draw_series(dots)
            .map_err(err(path))?
            .label(format!("{} ({} spikes)", p.name, p.times.len()))
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 12, y + 6)], c.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 16))
        .draw()
        .map_err(err(path))?;
    root.present().map_err(err(path))
}

/// A trace `v(t)`, e.g. the LFP of one electrode, with axis labels `y_desc` and time (ms).
pub fn trace(path: &Path, title: &str, y_desc: &str, t: &[f64], v: &[f64]) -> Result<()> {
    let root = area(path, TRACE_SIZE)?;
    let (lo, hi) = v.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| (lo.min(x), hi.max(x)));
    let pad = if hi > lo { 0.05 * (hi - lo) } else { 0.0 };
    let t_lo = t.first().copied().unwrap_or(0.0);
    let t_hi = t.last().copied().unwrap_or(1.0);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 24))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(80)
        .build_cartesian_2d(range(t_lo, t_hi), range(lo - pad, hi + pad))
        .map_err(err(path))?;
    chart
        .configure_mesh()
        .light_line_style(WHITE.mix(0.0))
        .x_desc("time (ms)")
        .y_desc(y_desc)
        .label_style(("sans-serif", 16))
        .draw()
        .map_err(err(path))?;
    chart
        .draw_series(LineSeries::new(t.iter().copied().zip(v.iter().copied()), colour(0).stroke_width(1)))
        .map_err(err(path))?;
    root.present().map_err(err(path))
}

/// Curves of mean ± s.d. over time, one colour per condition (band for ± s.d.), legend with the labels: the
/// separation figure (state distance over time per input distance).
pub fn curves(path: &Path, title: &str, y_desc: &str, curves: &[Curve]) -> Result<()> {
    let root = area(path, CURVES_SIZE)?;
    let all_t = curves.iter().flat_map(|c| c.t.iter().copied());
    let (t_lo, t_hi) = all_t.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| (lo.min(x), hi.max(x)));
    let y_hi =
        curves.iter().flat_map(|c| c.mean.iter().zip(&c.sd).map(|(m, s)| m + s)).fold(f64::NEG_INFINITY, f64::max);
    let y_lo =
        curves.iter().flat_map(|c| c.mean.iter().zip(&c.sd).map(|(m, s)| m - s)).fold(f64::INFINITY, f64::min).min(0.0);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 24))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(80)
        .build_cartesian_2d(range(t_lo, t_hi), range(y_lo, y_hi * 1.05))
        .map_err(err(path))?;
    chart
        .configure_mesh()
        .light_line_style(WHITE.mix(0.0))
        .x_desc("time (ms)")
        .y_desc(y_desc)
        .label_style(("sans-serif", 16))
        .draw()
        .map_err(err(path))?;
    for (i, c) in curves.iter().enumerate() {
        let col = colour(i);
        let upper = c.t.iter().zip(c.mean.iter().zip(&c.sd)).map(|(&t, (m, s))| (t, m + s));
        let lower = c.t.iter().zip(c.mean.iter().zip(&c.sd)).rev().map(|(&t, (m, s))| (t, m - s));
        let band: Vec<(f64, f64)> = upper.chain(lower).collect();
        chart.draw_series(std::iter::once(Polygon::new(band, col.mix(0.2).filled()))).map_err(err(path))?;
        chart
            .draw_series(LineSeries::new(c.t.iter().copied().zip(c.mean.iter().copied()), col.stroke_width(2)))
            .map_err(err(path))?
            .label(c.label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], col.stroke_width(3)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 16))
        .draw()
        .map_err(err(path))?;
    root.present().map_err(err(path))
}

/// A scaling figure: two panels over the node count on a log2 axis, left `time` (seconds, log axis), right
/// `efficiency` (parallel efficiency, linear from 0), one colour per series (the same index in both panels).
pub fn scaling(path: &Path, title: &str, time: &[Line], efficiency: &[Line]) -> Result<()> {
    let root = area(path, SCALING_SIZE)?;
    let root = root.titled(title, ("sans-serif", 24)).map_err(err(path))?;
    let (left, right) = root.split_horizontally(SCALING_SIZE.0 / 2);
    let xs = time.iter().chain(efficiency).flat_map(|l| l.points.iter().map(|p| p.0)).filter(|x| *x > 0.0);
    let (x_lo, x_hi) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| (lo.min(x), hi.max(x)));
    let (x_lo, x_hi) = if x_lo.is_finite() { (x_lo.log2() - 0.25, x_hi.log2() + 0.25) } else { (-0.25, 1.25) };
    // Labels only at whole powers of two.
    let nodes =
        |x: &f64| if (x - x.round()).abs() < 1e-6 { format!("{}", 2f64.powf(x.round())) } else { String::new() };
    for (k, (panel, lines)) in [(left, time), (right, efficiency)].into_iter().enumerate() {
        let ys = lines.iter().flat_map(|l| l.points.iter().map(|p| p.1)).filter(|y| y.is_finite() && *y > 0.0);
        let (y_lo, y_hi) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), y| (lo.min(y), hi.max(y)));
        let (y_range, y_desc) = if k == 0 {
            let (lo, hi) = if y_lo.is_finite() { (y_lo.log10() - 0.1, y_hi.log10() + 0.1) } else { (-1.0, 1.0) };
            (range(lo, hi), "run time (s, log scale)")
        } else {
            (0.0..(if y_hi.is_finite() { y_hi.max(1.0) * 1.1 } else { 1.1 }), "parallel efficiency")
        };
        let mut chart = ChartBuilder::on(&panel)
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(80)
            .build_cartesian_2d(range(x_lo, x_hi), y_range)
            .map_err(err(path))?;
        let log_label = |y: &f64| format!("{:.3}", 10f64.powf(*y));
        let mut mesh = chart.configure_mesh();
        mesh.light_line_style(WHITE.mix(0.0))
            .disable_x_mesh()
            .x_desc("nodes")
            .y_desc(y_desc)
            .x_labels(40)
            .x_label_formatter(&nodes)
            .label_style(("sans-serif", 16));
        if k == 0 {
            mesh.y_label_formatter(&log_label);
        }
        mesh.draw().map_err(err(path))?;
        for (i, l) in lines.iter().enumerate() {
            let col = colour(i);
            let pts: Vec<(f64, f64)> = l
                .points
                .iter()
                .filter(|p| p.0 > 0.0 && p.1.is_finite() && (k == 1 || p.1 > 0.0))
                .map(|&(x, y)| (x.log2(), if k == 0 { y.log10() } else { y }))
                .collect();
            chart
                .draw_series(LineSeries::new(pts.iter().copied(), col.stroke_width(2)))
                .map_err(err(path))?
                .label(l.label.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], col.stroke_width(3)));
            chart.draw_series(pts.iter().map(|&p| Circle::new(p, 4, col.filled()))).map_err(err(path))?;
        }
        chart
            .configure_series_labels()
            .position(if k == 0 { SeriesLabelPosition::UpperRight } else { SeriesLabelPosition::LowerLeft })
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .draw()
            .map_err(err(path))?;
    }
    root.present().map_err(err(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(path: &Path) -> (u32, u32, Vec<[u8; 3]>) {
        let f = std::fs::File::open(path).unwrap();
        let mut r = png::Decoder::new(std::io::BufReader::new(f)).read_info().unwrap();
        let mut buf = vec![0; r.output_buffer_size()];
        let info = r.next_frame(&mut buf).unwrap();
        let px = buf[..info.buffer_size()].chunks(3).map(|c| [c[0], c[1], c[2]]).collect();
        (info.width, info.height, px)
    }

    fn count(px: &[[u8; 3]], c: RGBColor) -> usize {
        px.iter().filter(|p| **p == [c.0, c.1, c.2]).count()
    }

    fn tmp(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("miv-analysis-plot-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d.join(name)
    }

    #[test]
    fn raster_has_every_populations_colour_and_text() {
        // Three populations of 20 cells, 50 spikes each: every colour is drawn (dots and legend swatch), the
        // fourth palette colour is not, and text (dark pixels of the embedded font) is there.
        let pops: Vec<PopulationSpikes> = (0..3)
            .map(|p| PopulationSpikes {
                name: format!("P{p}"),
                times: (0..50).map(|k| 2.0 * k as f64).collect(),
                gids: (0..50).map(|k| 20 * p + k % 20).collect(),
            })
            .collect();
        let path = tmp("raster.png");
        raster(&path, "test raster", &pops, Some(100.0)).unwrap();
        let (w, h, px) = decode(&path);
        assert_eq!((w, h), RASTER_SIZE);
        for i in 0..3 {
            // 50 dots of radius 2 (~13 pixels each, some overlapping) plus the 13 x 13 legend swatch.
            assert!(count(&px, colour(i)) > 300, "population {i}: {}", count(&px, colour(i)));
        }
        assert_eq!(count(&px, colour(3)), 0);
        let dark = px.iter().filter(|p| p.iter().all(|&c| c < 80)).count();
        assert!(dark > 2000, "axis lines and text: {dark} dark pixels");
    }

    #[test]
    fn curves_draw_each_condition() {
        let t: Vec<f64> = (0..500).map(|i| i as f64).collect();
        let curves_in: Vec<Curve> = (0..2)
            .map(|c| Curve {
                label: format!("d(u,v)={}", c as f64 * 0.1),
                t: t.clone(),
                mean: t.iter().map(|x| (c + 1) as f64 * (1.0 + (x / 50.0).sin())).collect(),
                sd: vec![0.2; t.len()],
            })
            .collect();
        let path = tmp("curves.png");
        curves(&path, "separation", "state distance", &curves_in).unwrap();
        let (w, h, px) = decode(&path);
        assert_eq!((w, h), CURVES_SIZE);
        for i in 0..2 {
            assert!(count(&px, colour(i)) > 800, "curve {i}: {}", count(&px, colour(i)));
        }
        let e = curves(Path::new("/nonexistent-dir/x.png"), "t", "y", &curves_in).unwrap_err().to_string();
        assert!(e.contains("/nonexistent-dir/x.png"), "{e}");
    }

    #[test]
    fn scaling_draws_each_series_in_both_panels() {
        let line = |i: usize, f: &dyn Fn(f64) -> f64| Line {
            label: format!("series {i}"),
            points: [1.0, 2.0, 4.0, 8.0, 64.0].iter().map(|&n| (n, f(n))).collect(),
        };
        let time = [line(0, &|n| 100.0 / n), line(1, &|n| 30.0 / n.sqrt())];
        let eff = [line(0, &|_| 1.0), line(1, &|n| 1.0 / n.sqrt())];
        let path = tmp("scaling.png");
        scaling(&path, "scaling", &time, &eff).unwrap();
        let (w, h, px) = decode(&path);
        assert_eq!((w, h), SCALING_SIZE);
        // Each series colour appears in both halves of the figure.
        for i in 0..2 {
            let half = |lo: u32, hi: u32| {
                px.iter()
                    .enumerate()
                    .filter(|(k, p)| {
                        let x = *k as u32 % w;
                        x >= lo && x < hi && **p == [colour(i).0, colour(i).1, colour(i).2]
                    })
                    .count()
            };
            assert!(half(0, w / 2) > 300, "series {i} in the time panel: {}", half(0, w / 2));
            assert!(half(w / 2, w) > 300, "series {i} in the efficiency panel: {}", half(w / 2, w));
        }
        assert!(count(&px, colour(2)) == 0);
        let e = scaling(Path::new("/nonexistent-dir/x.png"), "t", &time, &eff).unwrap_err().to_string();
        assert!(e.contains("/nonexistent-dir/x.png"), "{e}");
    }
}
