//! Lambda entry point: `throughline_twitter::handle`, with the function its configuration builds.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    throughline_edge::serve_http!(throughline_twitter::XFunction::from_env, throughline_twitter::handle)
}
