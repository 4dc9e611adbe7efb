//! Verification benchmarks (filled by the performance work).
fn main() {}
