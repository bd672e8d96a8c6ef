//! The sample events in the workspace's `events/` folder, one folder per function.

use std::path::PathBuf;

/// The public URL the sample HTTP events were signed for (their `requestContext.domainName`).
pub const SAMPLE_PUBLIC_URL: &str = "https://sms.throughline.example/";

/// The workspace's `events/` folder.
pub fn events_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events"))
}

/// `events/<relative>` (`"x/02-dm-inbound.json"`).
pub fn event_path(relative: &str) -> PathBuf {
    events_dir().join(relative)
}

/// A sample event file's bytes.
pub fn event_bytes(relative: &str) -> Vec<u8> {
    let path = event_path(relative);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A sample event file as JSON.
pub fn event_json(relative: &str) -> serde_json::Value {
    serde_json::from_slice(&event_bytes(relative)).unwrap_or_else(|e| panic!("{relative} is not JSON: {e}"))
}

/// A sample HTTP event (Function URL / API Gateway v2) as the Lambda request the function
/// receives, exactly as on disk.
pub fn lambda_request(relative: &str) -> lambda_http::Request {
    let text = String::from_utf8(event_bytes(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"));
    lambda_http::request::from_str(&text).unwrap_or_else(|e| panic!("{relative} is not an HTTP event: {e}"))
}
