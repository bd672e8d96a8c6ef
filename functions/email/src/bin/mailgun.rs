//! Lambda entry point of the Mailgun route webhook: `throughline_email::handle_mailgun`, with the
//! function its configuration builds.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    throughline_edge::serve_http!(
        throughline_email::MailgunFunction::from_env,
        throughline_email::handle_mailgun
    )
}
