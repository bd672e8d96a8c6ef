//! The one publisher of interactions: every connector puts its normalized interactions (and
//! updates to them) on the SQS queue through `InteractionPublisher`, and acknowledges its
//! provider only when this returns `Ok` for all of them.

use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use throughline_model::QueueMessage;

/// SQS accepts at most 10 entries per batch call.
const MAX_BATCH_ENTRIES: usize = 10;
/// A batch's total payload must stay under the queue's maximum message size. 256 KiB is the
/// limit of queues created before the 1 MiB default; staying under it works with both.
const MAX_BATCH_BYTES: usize = 256 * 1024;
/// Batch requests in flight at once: 1000 messages take 13 round trips instead of 100.
const PARALLEL_BATCHES: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("SQS request failed: {0}")]
    Sqs(String),
    #[error("SQS refused {failed} of {total} messages (first code: {code})")]
    Refused { failed: usize, total: usize, code: String },
    #[error("interaction {0} is larger than an SQS message can be")]
    TooLarge(String),
}

#[derive(Debug, Clone)]
pub struct InteractionPublisher {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl InteractionPublisher {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }

    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }

    /// Queues every message, in batches of up to ten, `PARALLEL_BATCHES` requests at a time (a
    /// Meta POST may carry 1000 messages and must be answered within seconds). Succeeds only
    /// when SQS has accepted all of them; on error the caller answers 5xx so the provider
    /// retries, and the deterministic interaction ids make the messages that did get through
    /// harmless duplicates.
    pub async fn publish(&self, messages: &[QueueMessage]) -> Result<(), PublishError> {
        let bodies: Vec<String> = messages.iter().map(QueueMessage::to_json).collect();
        let batches = batches(&bodies)?;
        for group in batches.chunks(PARALLEL_BATCHES) {
            futures_util::future::try_join_all(group.iter().map(|batch| self.send_batch(batch))).await?;
        }
        Ok(())
    }

    async fn send_batch(&self, batch: &[(usize, &String)]) -> Result<(), PublishError> {
        let entries = batch
            .iter()
            .map(|(index, body)| {
                SendMessageBatchRequestEntry::builder()
                    .id(index.to_string())
                    .message_body(body.as_str())
                    .build()
                    .expect("id and body are set")
            })
            .collect::<Vec<_>>();
        let total = entries.len();
        let output = self
            .client
            .send_message_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| PublishError::Sqs(aws_sdk_sqs::error::DisplayErrorContext(e).to_string()))?;
        match output.failed.first() {
            Some(first) => Err(PublishError::Refused {
                failed: output.failed.len(),
                total,
                code: first.code.clone(),
            }),
            None => Ok(()),
        }
    }
}

/// Splits bodies into SQS batches by count and by total size, keeping their order.
fn batches(bodies: &[String]) -> Result<Vec<Vec<(usize, &String)>>, PublishError> {
    let mut all = Vec::new();
    let mut current: Vec<(usize, &String)> = Vec::new();
    let mut bytes = 0;
    for (index, body) in bodies.iter().enumerate() {
        if body.len() > MAX_BATCH_BYTES {
            return Err(PublishError::TooLarge(index.to_string()));
        }
        if current.len() == MAX_BATCH_ENTRIES || bytes + body.len() > MAX_BATCH_BYTES {
            all.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += body.len();
        current.push((index, body));
    }
    if !current.is_empty() {
        all.push(current);
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_respect_count_and_size() {
        let small: Vec<String> = (0..23).map(|i| format!("{i}")).collect();
        let b = batches(&small).unwrap();
        assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), vec![10, 10, 3]);
        assert_eq!(b[2][0].0, 20);

        let big: Vec<String> = (0..3).map(|_| "x".repeat(100 * 1024)).collect();
        assert_eq!(
            batches(&big).unwrap().iter().map(Vec::len).collect::<Vec<_>>(),
            vec![2, 1]
        );

        assert!(matches!(
            batches(&["x".repeat(MAX_BATCH_BYTES + 1)]),
            Err(PublishError::TooLarge(_))
        ));
        assert!(batches(&[]).unwrap().is_empty());
    }
}
