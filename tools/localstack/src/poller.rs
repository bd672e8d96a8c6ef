//! Plays the part of Lambda's SQS event source mapping, which no emulator provides: receive a
//! batch, invoke the function with an `SqsEvent`, delete the messages it did not report as
//! failed. Failed messages stay on the queue, come back after the visibility timeout, and SQS
//! itself (the redrive policy) moves them to the dead-letter queue after `maxReceiveCount`.

use std::collections::HashMap;
use std::future::Future;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};

use crate::Result;
use crate::emulator::REGION;

#[derive(Debug, Clone)]
pub struct EventSourceMapping {
    pub sqs: aws_sdk_sqs::Client,
    pub queue_url: String,
    pub queue_arn: String,
    pub batch_size: i32,
    pub report_batch_item_failures: bool,
    /// Receive with this visibility timeout instead of the queue's (seconds), so a local run
    /// sees redeliveries without waiting minutes. `None` keeps the queue's.
    pub visibility_timeout: Option<i32>,
}

/// What one poll did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PollOutcome {
    pub received: usize,
    pub deleted: usize,
    pub failed: usize,
}

impl EventSourceMapping {
    /// Receives one batch (waiting up to `wait_seconds` for messages) and hands it to `invoke`.
    /// `invoke` returning `Err` is a failed invocation: every message of the batch stays.
    pub async fn poll_once<F, Fut>(&self, wait_seconds: i32, invoke: F) -> Result<PollOutcome>
    where
        F: FnOnce(SqsEvent) -> Fut,
        Fut: Future<Output = Result<SqsBatchResponse>>,
    {
        let mut receive = self
            .sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(self.batch_size.clamp(1, 10))
            .wait_time_seconds(wait_seconds)
            .message_system_attribute_names(MessageSystemAttributeName::All);
        if let Some(timeout) = self.visibility_timeout {
            receive = receive.visibility_timeout(timeout);
        }
        let messages = receive
            .send()
            .await
            .map_err(|e| format!("ReceiveMessage: {}", aws_sdk_sqs::error::DisplayErrorContext(e)))?
            .messages
            .unwrap_or_default();
        if messages.is_empty() {
            return Ok(PollOutcome::default());
        }

        let mut event = SqsEvent::default();
        let mut receipts = HashMap::new();
        for message in &messages {
            let mut record = SqsMessage::default();
            record.message_id = message.message_id.clone();
            record.receipt_handle = message.receipt_handle.clone();
            record.body = message.body.clone();
            record.md5_of_body = message.md5_of_body.clone();
            record.attributes = message
                .attributes
                .clone()
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k.as_str().to_owned(), v))
                .collect();
            record.event_source = Some("aws:sqs".into());
            record.event_source_arn = Some(self.queue_arn.clone());
            record.aws_region = Some(REGION.into());
            if let (Some(id), Some(handle)) = (&message.message_id, &message.receipt_handle) {
                receipts.insert(id.clone(), handle.clone());
            }
            event.records.push(record);
        }

        let received = event.records.len();
        let failed_ids: Vec<String> = match invoke(event).await {
            Ok(response) if self.report_batch_item_failures => response
                .batch_item_failures
                .into_iter()
                .map(|f| f.item_identifier)
                .collect(),
            Ok(_) => Vec::new(),
            Err(error) => {
                eprintln!("    invocation failed, the whole batch stays on the queue: {error}");
                receipts.keys().cloned().collect()
            }
        };
        // Lambda treats an unknown identifier in the response as failing the whole batch.
        let whole_batch_failed = failed_ids.iter().any(|id| !receipts.contains_key(id));
        let to_delete: Vec<DeleteMessageBatchRequestEntry> = receipts
            .iter()
            .filter(|(id, _)| !whole_batch_failed && !failed_ids.contains(id))
            .enumerate()
            .map(|(i, (_, handle))| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(handle)
                    .build()
            })
            .collect::<std::result::Result<_, _>>()?;
        let deleted = to_delete.len();
        if deleted > 0 {
            self.sqs
                .delete_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(to_delete))
                .send()
                .await
                .map_err(|e| format!("DeleteMessageBatch: {}", aws_sdk_sqs::error::DisplayErrorContext(e)))?;
        }
        Ok(PollOutcome {
            received,
            deleted,
            failed: received - deleted,
        })
    }

    /// Messages still on the queue, visible or in flight.
    pub async fn backlog(&self) -> Result<u64> {
        queue_depth(&self.sqs, &self.queue_url).await
    }
}

/// Visible plus in-flight messages of a queue.
pub async fn queue_depth(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> Result<u64> {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(A::ApproximateNumberOfMessages)
        .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .map_err(|e| format!("GetQueueAttributes: {}", aws_sdk_sqs::error::DisplayErrorContext(e)))?
        .attributes
        .unwrap_or_default();
    let count = |name: A| attributes.get(&name).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    Ok(count(A::ApproximateNumberOfMessages) + count(A::ApproximateNumberOfMessagesNotVisible))
}
