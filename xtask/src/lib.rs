//! Developer commands for Throughline (`cargo xtask …`): the demo, the cost and cold-start
//! measurements, the local API agent. The local stack they run on is `throughline-localstack`.

pub mod agent;
pub mod coldstart;
pub mod costs;
pub mod demo;
pub mod throughput;
// The commands' own code names the local stack's modules as its own.
pub use throughline_localstack::{Result, workspace_root};
pub(crate) use throughline_localstack::{lambda, poller, sign, stack, venv};
