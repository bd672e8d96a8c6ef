//! Lambda entry point: `throughline_sender::handle` over each OutboundQueue batch, with the
//! sender its configuration builds.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    throughline_edge::serve_event!(throughline_sender::Sender::from_env, throughline_sender::serve)
}
