//! `miv plot` and `miv run --plot`: a tiny network is simulated, its results drawn, and the PNGs decoded to check
//! their size and that the raster's dots and the LFP trace are there in the population's colour.

mod common;
use common::*;
use std::path::Path;

use miv::analysis::plot::{colour, RASTER_SIZE, TRACE_SIZE};

/// Width, height and RGB pixels of a PNG.
fn decode(path: &Path) -> (u32, u32, Vec<[u8; 3]>) {
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut r = png::Decoder::new(std::io::BufReader::new(f)).read_info().expect("png header");
    let mut buf = vec![0; r.output_buffer_size()];
    let info = r.next_frame(&mut buf).expect("png frame");
    assert_eq!(info.color_type, png::ColorType::Rgb, "{}", path.display());
    let px = buf[..info.buffer_size()].chunks(3).map(|c| [c[0], c[1], c[2]]).collect();
    (info.width, info.height, px)
}

/// Pixels of exactly `rgb` in rows `rows` (the legend sits in the top rows, the axis labels in the bottom ones).
fn count(img: &(u32, u32, Vec<[u8; 3]>), rgb: [u8; 3], rows: std::ops::Range<u32>) -> usize {
    let w = img.0 as usize;
    img.2.iter().enumerate().filter(|(i, p)| rows.contains(&((i / w) as u32)) && **p == rgb).count()
}

fn rgb(i: usize) -> [u8; 3] {
    let c = colour(i);
    [c.0, c.1, c.2]
}

#[test]
fn run_plot_and_miv_plot_draw_raster_and_lfp() {
    let dir = scratch("plot_ring");
    let net = dir.join("net");
    miv(&["gen", "ring", "--n", "10", "--delay", "1", "--out", net.to_str().unwrap()]).expect_ok("miv gen");
    let exp = net.join("experiment.yaml");
    let text = std::fs::read_to_string(&exp).unwrap();
    assert!(text.contains("output:"));
    let lfp = "lfp:\n  - {label: e, position: [100, 20, 0], dt_lfp: 0.1, fdst: 1.0}\noutput:";
    std::fs::write(&exp, text.replace("output:", lfp)).unwrap();

    // `miv run --plot` writes the figures next to the results.
    miv(&["-q", "run", exp.to_str().unwrap(), "--plot"]).expect_ok("miv run --plot");
    assert!(net.join("results-raster.png").is_file() && net.join("results-lfp.png").is_file());

    // `miv plot --out DIR`.
    let out = dir.join("figs");
    let o = miv(&["plot", net.join("results.h5").to_str().unwrap(), "--out", out.to_str().unwrap()]).expect_ok("plot");
    assert!(o.stdout.contains("results-raster.png") && o.stdout.contains("results-lfp.png"), "{}", o.stdout);

    let raster = decode(&out.join("results-raster.png"));
    assert_eq!((raster.0, raster.1), RASTER_SIZE);
    // The ring's 10 cells all spike; each spike is a filled dot of radius 2 (~13 pixels) in population 0's colour.
    // Below the legend (rows 150..) and above the time axis (.. height - 60) dozens of dots must show.
    let dots = count(&raster, rgb(0), 150..RASTER_SIZE.1 - 60);
    assert!(dots > 100, "raster has {dots} pixels of population BS's colour");
    assert_eq!(count(&raster, rgb(1), 0..RASTER_SIZE.1), 0, "one population, one colour");
    let white = raster.2.iter().filter(|p| **p == [255, 255, 255]).count();
    assert!(white > raster.2.len() / 2, "background is white");

    let trace = decode(&out.join("results-lfp.png"));
    assert_eq!((trace.0, trace.1), TRACE_SIZE);
    // The trace runs across the plot (~1000 pixels wide), so at least that many pixels of its colour.
    let line = count(&trace, rgb(0), 0..TRACE_SIZE.1);
    assert!(line > 800, "LFP trace has {line} pixels");

    // Bad input: one line naming the file.
    let missing = dir.join("nope.h5");
    let e = miv(&["plot", missing.to_str().unwrap()]);
    assert_eq!(e.code, Some(1), "{}", e.stderr);
    assert!(e.stderr.contains("nope.h5"), "{}", e.stderr);
}
