//! Lambda entry point: wire the DynamoDB table, S3 (raw mail erasure) and the queue, then
//! serve the SQS handler.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use throughline_store::TimelineStore;

#[tokio::main]
async fn main() -> Result<(), Error> {
    // Third-party crates stay at info even at debug: lambda_runtime would log the raw batch.
    throughline_edge::init_logging();
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let table = std::env::var("TIMELINE_TABLE_NAME").map_err(|_| "configuration TIMELINE_TABLE_NAME is not set")?;
    let window = match std::env::var("CONVERSATION_WINDOW_MINUTES") {
        Ok(minutes) => chrono::TimeDelta::minutes(
            minutes
                .parse()
                .map_err(|_| "configuration CONVERSATION_WINDOW_MINUTES is not a number of minutes")?,
        ),
        Err(_) => throughline_store::DEFAULT_WINDOW,
    };
    let suppression_key = throughline_edge::config::load_secret(&aws, "SUPPRESSION_KEY").await?;
    let store = TimelineStore::new(aws_sdk_dynamodb::Client::new(&aws), table)
        .with_conversation_window(window)
        .with_suppression_key(suppression_key.expose())
        .with_objects(throughline_store::s3_client(&aws));
    let writer = throughline_timeline_writer::Writer {
        store,
        publisher: throughline_queue::InteractionPublisher::new(
            aws_sdk_sqs::Client::new(&aws),
            throughline_edge::config::required_env("INTERACTIONS_QUEUE_URL")?,
        ),
        erasure_budget: throughline_timeline_writer::DEFAULT_ERASURE_BUDGET,
    };
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| {
        let writer = &writer;
        async move { Ok::<SqsBatchResponse, Error>(throughline_timeline_writer::handle(event.payload, writer).await) }
    }))
    .await
}
