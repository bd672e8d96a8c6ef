//! Lambda entry point: `throughline_timeline_api::handle`, with the API its configuration
//! builds.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    throughline_edge::serve_http!(
        throughline_timeline_api::TimelineApi::from_env,
        throughline_timeline_api::handle
    )
}
