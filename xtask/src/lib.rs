//! Developer commands for Throughline, and the local stack they (and the end-to-end tests) run:
//! the moto emulator with `infra/template.yaml`'s resources, the functions under
//! `cargo lambda watch`, and a poller that plays Lambda's SQS event source mapping.

pub mod agent;
pub mod coldstart;
pub mod costs;
pub mod demo;
pub mod emulator;
pub mod lambda;
pub mod poller;
pub mod sign;
pub mod stack;
pub mod template;
pub mod venv;

use std::path::PathBuf;

pub type Result<T, E = Box<dyn std::error::Error + Send + Sync>> = std::result::Result<T, E>;

/// The repository root (this crate lives in `xtask/`).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask has a parent directory")
        .to_path_buf()
}
