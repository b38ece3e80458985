//! Placeholder replaced by the MCP latency/throughput benchmark.
fn main() {}
