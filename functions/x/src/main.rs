//! Lambda entry point: `throughline_x::handle`, with the function its configuration builds.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    throughline_edge::serve_http!(throughline_x::XFunction::from_env, throughline_x::handle)
}
