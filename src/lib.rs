//! upstream-exporter: a Prometheus exporter for the health of the services you
//! depend on. See `ARCHITECTURE.md` for how the modules fit together.

#![forbid(unsafe_code)]

pub mod api;
pub mod board;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod exposition;
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod negotiate;
pub mod probe;
pub mod probe_cmd;
pub mod process;
pub mod render;
pub mod retry;
pub mod runner;
pub mod server;
pub mod shard;
pub mod state;
pub mod webconfig;
