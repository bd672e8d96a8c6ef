//! Lambda entry point of the SES receiving function: wire configuration and clients, then serve
//! `throughline_email::handle_ses` for SNS (SES SNS action) and SES (Lambda action) events.
#![recursion_limit = "256"]

use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    throughline_edge::init_logging();
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let function = throughline_email::SesFunction::from_env(&aws).await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let function = &function;
        async move {
            throughline_email::handle_ses(event.payload, function)
                .await
                .map_err(Error::from)
        }
    }))
    .await
}
