//! How the benchmark programs report: percentiles of sorted samples, one `name value unit`
//! line per figure.

/// The `p`-quantile (0–1) of ascending `sorted` samples (NaN when there are none).
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

/// Print one figure as `name value unit`.
pub fn figure(name: &str, value: f64, unit: &str) {
    println!("{name} {value:.2} {unit}");
}
