//! Lambda entry point: `throughline_facebook::handle`, with the function its configuration builds.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    throughline_edge::serve_http!(
        throughline_facebook::FacebookFunction::from_env,
        throughline_facebook::handle
    )
}
