//! The local stack that the end-to-end tests and `cargo xtask demo` run Throughline on: the
//! moto emulator (`emulator`, installed into `.venv` by `venv`) holding `infra/template.yaml`'s
//! tables, buckets, queues and parameters (`template`, `stack`), the functions under
//! `cargo lambda watch` (`lambda`), a poller that plays Lambda's SQS event source mapping
//! (`poller`), and the sample events signed as their providers sign them (`sign`).

pub mod emulator;
pub mod lambda;
pub mod poller;
pub mod providers;
pub mod sign;
pub mod stack;
pub mod template;
pub mod venv;

use std::path::PathBuf;

/// What the local stack's operations answer: any error, for a test or a command to report.
pub type Result<T, E = Box<dyn std::error::Error + Send + Sync>> = std::result::Result<T, E>;

/// The repository root (this crate lives in `tools/localstack/`).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .canonicalize()
        .expect("the repository root exists")
}
