//! The sender: turns a send job into exactly one call to its provider's send API.
//!
//! The core is pure. Per provider, a request builder (`SendJob` + credentials → `ProviderRequest`)
//! and a response interpreter (`ProviderResponse` → `SendOutcome`), in `providers`; the
//! credentials document in `credentials`. The shell (the Lambda) claims the attempt, makes the
//! one HTTP call, and records the outcome.

pub mod credentials;
pub mod providers;
pub mod request;

pub use credentials::{Credentials, ProviderApis};
pub use providers::{build_request, interpret_response};
pub use request::{ProviderFailure, ProviderRequest, ProviderResponse, SendOutcome};
