//! Lambda entry point of the SES receiving function: `throughline_email::handle_ses` for SNS (SES
//! SNS action) and SES (Lambda action) events, with the function its configuration builds.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    throughline_edge::serve_event!(throughline_email::SesFunction::from_env, throughline_email::handle_ses)
}
