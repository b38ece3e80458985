//! Printing helpers shared by the benchmarks.
#![allow(clippy::print_stdout)]

/// Prints min / median / max of `v` (milliseconds or counts) under `name`.
pub fn summary(name: &str, unit: &str, mut v: Vec<f64>) {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        println!("{name:<46} no samples");
        return;
    }
    println!(
        "{name:<46} min {:>8.1}{unit}   median {:>8.1}{unit}   max {:>8.1}{unit}   (n={})",
        v[0],
        v[v.len() / 2],
        v[v.len() - 1],
        v.len()
    );
}
