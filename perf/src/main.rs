//! The `tern-perf` command line.

fn main() {}
