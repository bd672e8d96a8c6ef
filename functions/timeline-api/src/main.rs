//! Lambda entry point: wire the DynamoDB table, S3 (raw mail erasure) and the queue, then
//! serve the timeline API.

use lambda_http::{Error, Request, service_fn};
use throughline_store::TimelineStore;
use throughline_timeline_api::TimelineApi;

#[tokio::main]
async fn main() -> Result<(), Error> {
    throughline_edge::init_logging();
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let table = throughline_edge::config::required_env("TIMELINE_TABLE_NAME")?;
    let api = TimelineApi {
        store: TimelineStore::new(aws_sdk_dynamodb::Client::new(&aws), table)
            .with_suppression_key(
                throughline_edge::config::load_secret(&aws, "SUPPRESSION_KEY")
                    .await?
                    .expose(),
            )
            .with_objects(throughline_store::s3_client(&aws)),
        publisher: throughline_queue::InteractionPublisher::new(
            aws_sdk_sqs::Client::new(&aws),
            throughline_edge::config::required_env("INTERACTIONS_QUEUE_URL")?,
        ),
        erasure_budget: throughline_timeline_api::DEFAULT_ERASURE_BUDGET,
        allow_unsigned: throughline_edge::config::optional_env("TIMELINE_API_ALLOW_UNSIGNED").as_deref()
            == Some("true"),
    };
    lambda_http::run(service_fn(|request: Request| {
        let api = &api;
        async move { Ok::<_, Error>(throughline_timeline_api::handle(request, api).await) }
    }))
    .await
}
