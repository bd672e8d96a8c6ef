//! The sender: turns a send job into exactly one call to its provider's send API.
//!
//! The core is pure. Per provider, a request builder (`SendJob` + credentials → `ProviderRequest`)
//! and a response interpreter (`ProviderResponse` → `SendOutcome`), in `providers`; the
//! credentials document in `credentials`. The shell (the Lambda) claims the attempt, makes the
//! one HTTP call, and records the outcome.

pub mod credentials;
pub mod http;
pub mod providers;
pub mod request;

pub use credentials::{Credentials, ProviderApis};
pub use http::{CallResult, ProviderClient};
pub use providers::{build_request, interpret_response};
pub use request::{ProviderFailure, ProviderRequest, ProviderResponse, SendOutcome};

use chrono::{DateTime, Utc};
use throughline_model::{SendJob, SendRefusal};

/// One attempt at `job`: its request built, the one call made, the answer read. Refused before
/// any call when the job cannot be sent (the credentials changed since it was queued).
pub async fn send_once(
    client: &ProviderClient,
    job: &SendJob,
    credentials: &Credentials,
    apis: &ProviderApis,
    now: DateTime<Utc>,
) -> Result<SendOutcome, SendRefusal> {
    let request = build_request(job, credentials, apis, now)?;
    Ok(match client.call(&request).await {
        CallResult::Answered(response) => interpret_response(job, &response, now),
        CallResult::NotSent(why) => {
            SendOutcome::transient(None, "network", format!("{why}; the message will be tried again"))
        }
        CallResult::Unknown(why) => SendOutcome::Unknown {
            reason: format!("{why}: the provider may have sent it, so it is not sent again by itself"),
        },
    })
}
