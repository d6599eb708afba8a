//! Helpers of the ecosystem end-to-end suite (`tests/e2e_prometheus.rs`):
//! the switchable fixture upstream, process guards, a Prometheus API
//! client, and the Grafana dashboard reader.

pub mod dashboard;
pub mod process;
pub mod prom;
pub mod upstream;
