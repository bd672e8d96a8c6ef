//! Lambda entry point: `throughline_sms::handle`, with the function its configuration builds.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    throughline_edge::serve_http!(throughline_sms::SmsFunction::from_env, throughline_sms::handle)
}
