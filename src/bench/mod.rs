//! Load tools (`mes bench …`): real clients driving a server to measure throughput
//! and latency. Benchmarks print figures; they never assert timings.

pub mod imap;
pub mod smtp;

/// Latency percentiles of a sorted sample, in milliseconds.
pub fn percentile_ms(sorted: &[std::time::Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}
