//! Lambda entry point of the Mailgun route webhook: wire configuration and clients, then serve
//! `throughline_email::handle_mailgun`.
#![recursion_limit = "256"]

use lambda_http::{Error, Request, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    throughline_edge::init_logging();
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let function = throughline_email::MailgunFunction::from_env(&aws).await?;
    lambda_http::run(service_fn(|req: Request| {
        let function = &function;
        async move { Ok::<_, Error>(throughline_email::handle_mailgun(req, function).await) }
    }))
    .await
}
