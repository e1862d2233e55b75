//! The workload as OpenMetrics text, for `promtool tsdb
//! create-blocks-from openmetrics`: the same samples the load generator
//! sends as remote write, one file per block window.
//!
//! promtool reads its whole input into memory and parses it once per block
//! window of the data, so one file per window keeps that linear. Within a
//! file, lines go round by round (every series' sample of one scrape, then
//! the next scrape), so each series' samples are in time order. No `# TYPE`
//! lines: Prometheus's blocks store no metric types.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::loadgen::{ChunkGenerator, GeneratedSeries, Workload};

/// One OpenMetrics sample line: `name{labels} value timestamp_seconds`.
pub fn write_line(
    out: &mut impl Write,
    series: &GeneratedSeries,
    timestamp_ms: i64,
    value: f64,
) -> std::io::Result<()> {
    let name = series.labels.iter().find(|l| l.name == "__name__").map_or("", |l| l.value.as_str());
    out.write_all(name.as_bytes())?;
    let mut first = true;
    for l in series.labels.iter().filter(|l| l.name != "__name__") {
        out.write_all(if first { b"{" } else { b"," })?;
        first = false;
        write!(out, "{}=\"", l.name)?;
        for c in l.value.chars() {
            match c {
                '\\' => out.write_all(b"\\\\")?,
                '"' => out.write_all(b"\\\"")?,
                '\n' => out.write_all(b"\\n")?,
                c => write!(out, "{c}")?,
            }
        }
        out.write_all(b"\"")?;
    }
    if !first {
        out.write_all(b"}")?;
    }
    // `{}` of an f64 is the shortest text that parses back to the same bits.
    let (secs, ms) = (timestamp_ms.div_euclid(1000), timestamp_ms.rem_euclid(1000));
    if ms == 0 { writeln!(out, " {value} {secs}") } else { writeln!(out, " {value} {secs}.{ms:03}") }
}

/// Writes every sample of `workload` into `dir`, one file per `window_ms`
/// window (aligned to multiples of it, as promtool aligns its blocks), each
/// ending with `# EOF`. Returns the files in time order and the samples
/// written.
///
/// # Errors
/// When a file cannot be written.
pub fn write_windows(workload: &Workload, dir: &Path, window_ms: i64) -> anyhow::Result<(Vec<PathBuf>, u64)> {
    let mut generators: Vec<ChunkGenerator<'_>> =
        (0..workload.chunks()).map(|c| ChunkGenerator::new(workload, c)).collect();
    let mut files = Vec::new();
    let mut current: Option<(i64, std::io::BufWriter<std::fs::File>)> = None;
    let mut samples = 0u64;
    let finish = |w: std::io::BufWriter<std::fs::File>| -> anyhow::Result<()> {
        let mut w = w;
        w.write_all(b"# EOF\n")?;
        w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        Ok(())
    };
    for _ in 0..workload.rounds {
        for g in &mut generators {
            let Some(round) = g.next_round() else { continue };
            for series in &round {
                for &(ts, value) in &series.samples {
                    let window = ts.div_euclid(window_ms);
                    if current.as_ref().is_none_or(|(w, _)| *w != window) {
                        if let Some((_, w)) = current.take() {
                            finish(w)?;
                        }
                        let path = dir.join(format!("window-{window}.om"));
                        let file =
                            std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
                        files.push(path);
                        current = Some((window, std::io::BufWriter::with_capacity(1 << 20, file)));
                    }
                    let (_, w) = current.as_mut().expect("a file is open");
                    write_line(w, series, ts, value)?;
                    samples += 1;
                }
            }
        }
    }
    if let Some((_, w)) = current.take() {
        finish(w)?;
    }
    Ok((files, samples))
}

#[cfg(test)]
mod tests {
    use schemas::prompb::Label;

    use super::*;
    use crate::loadgen::Kind;

    #[test]
    fn lines_are_openmetrics_samples() {
        let series = GeneratedSeries {
            labels: vec![
                Label { name: "__name__".into(), value: "node_load1".into() },
                Label { name: "a".into(), value: "x\"y\\z".into() },
                Label { name: "b".into(), value: "2".into() },
            ],
            samples: vec![],
            kind: Kind::Gauge,
            help: "",
        };
        let mut out = Vec::new();
        write_line(&mut out, &series, 1_750_000_015_000, 64_424_509_440.0).unwrap();
        write_line(&mut out, &series, 1_750_000_015_250, 0.07).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "node_load1{a=\"x\\\"y\\\\z\",b=\"2\"} 64424509440 1750000015\nnode_load1{a=\"x\\\"y\\\\z\",b=\"2\"} 0.07 1750000015.250\n"
        );
    }

    #[test]
    fn windows_split_by_time_and_keep_every_sample() {
        let dir = tempfile::tempdir().unwrap();
        let w = Workload {
            series: 300,
            samples_per_request: 100,
            rounds: 10,
            interval_ms: 15_000,
            end_ms: 7_200_000 + 60_000,
            ..Workload::default()
        };
        let (files, samples) = write_windows(&w, dir.path(), 7_200_000).unwrap();
        assert_eq!(samples, 3_000);
        assert_eq!(files.len(), 2, "rounds straddle one window boundary");
        let lines: usize = files
            .iter()
            .map(|f| {
                let text = std::fs::read_to_string(f).unwrap();
                assert!(text.ends_with("# EOF\n"));
                text.lines().filter(|l| !l.starts_with('#')).count()
            })
            .sum();
        assert_eq!(lines, 3_000);
    }
}
