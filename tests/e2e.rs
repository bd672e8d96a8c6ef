//! The end-to-end tests, one binary (the SDK is linked once), a module per part of the system:
//! the real handlers and binaries against the moto emulator and cargo-lambda's Runtime API
//! emulator, every resource created from infra/template.yaml. `permissions.rs` is the one test
//! in a binary of its own: it sets the process environment, as Lambda does for a function,
//! which no other test may share a process with.

mod attributes;
mod chat_pipeline;
mod delivery_status;
mod email_pipeline;
mod facebook_pipeline;
mod feedback;
mod identity_pipeline;
mod lambda_watch;
mod lifecycle;
mod outbound;
mod pipeline;
mod sender;
mod x_pipeline;
