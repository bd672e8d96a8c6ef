//! Lambda entry point: `throughline_chat::handle`, with the function its configuration builds.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    throughline_edge::serve_http!(throughline_chat::ChatFunction::from_env, throughline_chat::handle)
}
