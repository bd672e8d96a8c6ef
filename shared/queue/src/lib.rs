//! The one publisher of interactions: every connector puts its normalized interactions (and
//! updates to them) on the SQS queue through `InteractionPublisher`, and acknowledges its
//! provider only when this returns `Ok`: every message is then either queued or, if SQS can
//! never take it, reported as dropped. The timeline API puts its send jobs on the outbound
//! queue through the same publisher (`QueueBody`: what a queue's message body is made from).

#![warn(missing_docs)]

use aws_sdk_sqs::types::{BatchResultErrorEntry, SendMessageBatchRequestEntry};
use throughline_model::{QueueMessage, SendJob, is_noncharacter};

/// What a queue's message body is made from: the interactions queue's `QueueMessage`, the
/// outbound queue's `SendJob`.
pub trait QueueBody {
    /// The message body (JSON).
    fn to_body(&self) -> String;
}

impl QueueBody for QueueMessage {
    fn to_body(&self) -> String {
        self.to_json()
    }
}

impl QueueBody for SendJob {
    fn to_body(&self) -> String {
        self.to_json()
    }
}

/// SQS accepts at most 10 entries per batch call.
const MAX_BATCH_ENTRIES: usize = 10;
/// A batch's total payload must stay under the queue's maximum message size. 256 KiB is the
/// limit of queues created before the 1 MiB default; staying under it works with both.
const MAX_BATCH_BYTES: usize = 256 * 1024;
/// Batch requests in flight at once: 1000 messages take 13 round trips instead of 100.
const PARALLEL_BATCHES: usize = 8;

/// A failure worth retrying: the provider is answered 5xx and sends the delivery again.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// A batch request failed after the SDK's own retries (or could not be built): the SDK's
    /// error, with its context.
    #[error("SQS request failed: {0}")]
    Sqs(String),
    /// SQS failed entries of a batch on its side, and still did on the last of
    /// `ENTRY_ATTEMPTS` sends (or echoed ids that are not ours).
    #[error("SQS refused {failed} of {total} messages (first code: {code})")]
    Refused {
        /// The entries of the last send that SQS failed retryably.
        failed: usize,
        /// The entries of the last send.
        total: usize,
        /// SQS's error code for the first of them.
        code: String,
    },
}

impl throughline_model::ErrorCode for PublishError {
    fn code(&self) -> &'static str {
        "queue_unavailable"
    }

    fn status(&self) -> http::StatusCode {
        http::StatusCode::SERVICE_UNAVAILABLE
    }

    fn message(&self) -> String {
        "the interactions could not be queued; retry later".into()
    }
}

/// Why a message was not queued and never will be: the same bytes would be refused again, so
/// retrying the delivery cannot help and would only hold back the rest of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DropReason {
    /// Larger than an SQS message can be, even alone in its batch.
    TooLarge {
        /// The body's size, noncharacters removed.
        bytes: usize,
    },
    /// SQS refused the entry as the sender's fault (`SenderFault`), with this error code.
    RejectedByQueue {
        /// SQS's error code (`InvalidMessageContents`).
        code: String,
    },
}

impl DropReason {
    /// The reason code callers report (the `IgnoredEvents` metric's dimension).
    pub fn code(&self) -> &'static str {
        match self {
            DropReason::TooLarge { .. } => "too_large",
            DropReason::RejectedByQueue { .. } => "rejected_by_queue",
        }
    }
}

/// A message `publish` gave up on for good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    /// Its position in the slice given to `publish`.
    pub index: usize,
    /// Why it was dropped.
    pub reason: DropReason,
}

/// What `publish` did: every message is either queued or in `dropped`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Published {
    /// How many messages SQS took.
    pub queued: usize,
    /// In the order of the messages given.
    pub dropped: Vec<Dropped>,
}

/// Puts queue messages on one SQS queue.
#[derive(Debug, Clone)]
pub struct InteractionPublisher {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

/// The variable that names the interactions queue.
pub const QUEUE_URL_VAR: &str = "INTERACTIONS_QUEUE_URL";

/// The variable that names the outbound queue (the timeline API's send jobs).
pub const OUTBOUND_QUEUE_URL_VAR: &str = "OUTBOUND_QUEUE_URL";

/// The variable naming a queue (`INTERACTIONS_QUEUE_URL`…) is not set (a configuration error:
/// the function cannot start).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("configuration {0} is not set")]
pub struct QueueUrlMissing(pub &'static str);

impl InteractionPublisher {
    /// A publisher to the queue at `queue_url`, through `client`.
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }

    /// The publisher every function uses: to the queue `INTERACTIONS_QUEUE_URL` names (empty
    /// counts as unset), through a client of `aws`.
    pub fn from_env(aws: &aws_config::SdkConfig) -> Result<Self, QueueUrlMissing> {
        Self::from_env_var(aws, QUEUE_URL_VAR)
    }

    /// A publisher to the queue the variable `var` names (empty counts as unset).
    pub fn from_env_var(aws: &aws_config::SdkConfig, var: &'static str) -> Result<Self, QueueUrlMissing> {
        let queue_url = std::env::var(var)
            .ok()
            .filter(|url| !url.trim().is_empty())
            .ok_or(QueueUrlMissing(var))?;
        Ok(Self::new(aws_sdk_sqs::Client::new(aws), queue_url))
    }

    /// The URL of the queue it publishes to.
    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }

    /// Queues every message, in batches of up to ten, `PARALLEL_BATCHES` requests at a time (a
    /// Meta POST may carry 1000 messages and must be answered within seconds).
    ///
    /// A message SQS can never take (too large, or refused as the sender's fault) is dropped and
    /// reported in `Published::dropped`, and the others are still sent: one such message must
    /// not make its provider retry the whole delivery until it gives up on all of it. Any other
    /// failure is an error; the caller answers 5xx so the provider retries, and the
    /// deterministic interaction ids make the messages that did get through harmless duplicates.
    pub async fn publish<M: QueueBody>(&self, messages: &[M]) -> Result<Published, PublishError> {
        let bodies = bodies(messages);
        let (batches, mut dropped) = batches(&bodies);
        for group in batches.chunks(PARALLEL_BATCHES) {
            let refused = futures_util::future::try_join_all(group.iter().map(|batch| self.send_batch(batch))).await?;
            dropped.extend(refused.into_iter().flatten());
        }
        dropped.sort_by_key(|d| d.index);
        Ok(Published {
            queued: messages.len() - dropped.len(),
            dropped,
        })
    }

    /// Sends one batch. Request failures are retried by the SDK (standard mode: 3 attempts
    /// with backoff); entries SQS fails on its side are sent again here, up to
    /// `ENTRY_ATTEMPTS` times in all, so a passing fault does not cost the provider a retry
    /// (Twilio, by default, does not retry a failed webhook at all).
    async fn send_batch(&self, batch: &[(usize, &str)]) -> Result<Vec<Dropped>, PublishError> {
        let mut pending: Vec<(usize, &str)> = batch.to_vec();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let entries = pending
                .iter()
                .map(|(index, body)| {
                    SendMessageBatchRequestEntry::builder()
                        .id(index.to_string())
                        .message_body(*body)
                        .build()
                        .map_err(|e| PublishError::Sqs(e.to_string()))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let output = self
                .client
                .send_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| PublishError::Sqs(aws_sdk_sqs::error::DisplayErrorContext(e).to_string()))?;
            let error = match refusals(pending.len(), &output.failed) {
                Ok(dropped) => return Ok(dropped),
                Err(error) => error,
            };
            // Send the failed entries again (a sender's fault is refused again, and dropped then).
            let failed: std::collections::BTreeSet<&str> = output.failed.iter().map(|f| f.id.as_str()).collect();
            pending.retain(|(index, _)| failed.contains(index.to_string().as_str()));
            if attempt == ENTRY_ATTEMPTS || pending.is_empty() {
                return Err(error);
            }
            pause(attempt).await;
        }
    }
}

/// Sends of an entry SQS failed on its side, in all (the SDK retries whole requests itself).
const ENTRY_ATTEMPTS: u32 = 3;

/// 50 ms, then 100 ms: well within a webhook's time budget.
async fn pause(attempt: u32) {
    tokio::time::sleep(std::time::Duration::from_millis(50 * u64::from(attempt))).await;
}

/// Sorts SQS's per-entry failures of one batch. The sender's fault (invalid contents, too long)
/// is permanent: those entries are dropped. Anything else is SQS's own trouble and fails the
/// publish, so that the provider retries. An id SQS echoes that is not one of ours cannot be
/// attributed, so it too is treated as retryable.
fn refusals(total: usize, failed: &[BatchResultErrorEntry]) -> Result<Vec<Dropped>, PublishError> {
    let retryable: Vec<&BatchResultErrorEntry> = failed
        .iter()
        .filter(|f| !f.sender_fault || f.id.parse::<usize>().is_err())
        .collect();
    if let Some(first) = retryable.first() {
        return Err(PublishError::Refused {
            failed: retryable.len(),
            total,
            code: first.code.clone(),
        });
    }
    Ok(failed
        .iter()
        .filter_map(|f| {
            Some(Dropped {
                index: f.id.parse().ok()?,
                reason: DropReason::RejectedByQueue { code: f.code.clone() },
            })
        })
        .collect())
}

/// The message bodies `publish` sends, in order: each message's JSON without noncharacters.
fn bodies(messages: &[impl QueueBody]) -> Vec<String> {
    messages.iter().map(|m| without_noncharacters(m.to_body())).collect()
}

/// One SendMessageBatch call's entries: each body with its index in the messages given.
type Batch<'a> = Vec<(usize, &'a str)>;

/// Splits bodies into SQS batches by count and by total size, keeping their order; a body that
/// cannot fit even alone is dropped.
fn batches(bodies: &[String]) -> (Vec<Batch<'_>>, Vec<Dropped>) {
    let mut all = Vec::new();
    let mut too_large = Vec::new();
    let mut current: Batch<'_> = Vec::new();
    let mut bytes = 0;
    for (index, body) in bodies.iter().enumerate() {
        if body.len() > MAX_BATCH_BYTES {
            too_large.push(Dropped {
                index,
                reason: DropReason::TooLarge { bytes: body.len() },
            });
            continue;
        }
        if current.len() == MAX_BATCH_ENTRIES || bytes + body.len() > MAX_BATCH_BYTES {
            all.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += body.len();
        current.push((index, body.as_str()));
    }
    if !current.is_empty() {
        all.push(current);
    }
    (all, too_large)
}

/// Unicode noncharacters (U+FDD0..U+FDEF and the last two code points of every plane) are not
/// for interchange, and SQS refuses a message containing U+FFFE or U+FFFF. They are removed
/// here, from the serialized message, so that every text of every connector is covered in one
/// place: JSON's own syntax is ASCII, so only string contents can hold them, and serde_json
/// writes them unescaped.
fn without_noncharacters(body: String) -> String {
    if body.chars().any(is_noncharacter) {
        body.chars().filter(|c| !is_noncharacter(*c)).collect()
    } else {
        body
    }
}

#[cfg(test)]
mod tests {
    //! Pure tests of what `publish` decides: which bodies it sends, how it batches them, and how
    //! it sorts SQS's per-entry failures. No network: the calls to SQS themselves are exercised
    //! only against the moto server of the end-to-end tests (`tests/`), through the real SDK.
    use super::*;
    use throughline_model::{Channel, Direction, Handle, Interaction, NewInteraction, Platform, Provider};

    fn message(id: &str, text: &str) -> QueueMessage {
        let at = chrono::DateTime::from_timestamp(1_795_520_000, 0).unwrap();
        let user = |id: &str| Handle::Platform {
            platform: Platform::X,
            scope: None,
            id: id.parse().unwrap(),
        };
        let mut interaction = Interaction::new(NewInteraction {
            channel: Channel::X,
            provider: Provider::X,
            direction: Direction::Inbound,
            customer: user("42"),
            business_endpoint: user("1"),
            provider_message_id: id.parse().unwrap(),
            occurred_at: at,
            received_at: at,
        });
        interaction.text = Some(text.to_owned());
        interaction.into()
    }

    fn text(body: &str) -> String {
        serde_json::from_str::<serde_json::Value>(body).unwrap()["text"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    fn indexes(batches: &[Batch<'_>]) -> Vec<Vec<usize>> {
        batches.iter().map(|b| b.iter().map(|(i, _)| *i).collect()).collect()
    }

    /// A per-entry failure as the SDK hands it to `send_batch`.
    fn failure(id: &str, sender_fault: bool, code: &str) -> BatchResultErrorEntry {
        BatchResultErrorEntry::builder()
            .id(id)
            .sender_fault(sender_fault)
            .code(code)
            .build()
            .unwrap()
    }

    #[test]
    fn batches_respect_count_and_size_and_keep_the_order() {
        let small: Vec<String> = (0..23).map(|i| format!("{i}")).collect();
        let (b, dropped) = batches(&small);
        assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), vec![10, 10, 3]);
        assert_eq!(
            b.concat(),
            small
                .iter()
                .enumerate()
                .map(|(i, s)| (i, s.as_str()))
                .collect::<Vec<_>>(),
            "every body once, in order, with its index"
        );
        assert!(dropped.is_empty());

        let big: Vec<String> = (0..3).map(|_| "x".repeat(100 * 1024)).collect();
        assert_eq!(indexes(&batches(&big).0), vec![vec![0, 1], vec![2]]);

        // Exactly the limit fits in one batch; one byte more starts another.
        let half = MAX_BATCH_BYTES / 2;
        let exact = vec!["x".repeat(half), "x".repeat(half)];
        assert_eq!(indexes(&batches(&exact).0), vec![vec![0, 1]]);
        let over = vec!["x".repeat(half), "x".repeat(half + 1)];
        assert_eq!(indexes(&batches(&over).0), vec![vec![0], vec![1]]);

        // A body of exactly the limit is sent, alone.
        let limit = vec!["a".to_owned(), "x".repeat(MAX_BATCH_BYTES), "b".to_owned()];
        let (b, dropped) = batches(&limit);
        assert_eq!(indexes(&b), vec![vec![0], vec![1], vec![2]]);
        assert!(dropped.is_empty());

        assert!(batches(&[]).0.is_empty());
        assert!(batches(&[]).1.is_empty());
    }

    #[test]
    fn a_body_too_large_for_sqs_is_dropped_and_the_others_still_batched() {
        let bodies = vec!["a".to_owned(), "x".repeat(MAX_BATCH_BYTES + 1), "b".to_owned()];
        let (b, dropped) = batches(&bodies);
        assert_eq!(b, vec![vec![(0, "a"), (2, "b")]]);
        assert_eq!(
            dropped,
            vec![Dropped {
                index: 1,
                reason: DropReason::TooLarge {
                    bytes: MAX_BATCH_BYTES + 1
                }
            }]
        );
        assert_eq!(dropped[0].reason.code(), "too_large");

        // Several, among more than a batch of others: each dropped with its index, in order.
        let mut bodies: Vec<String> = (0..12).map(|i| format!("{i}")).collect();
        bodies[0] = "x".repeat(MAX_BATCH_BYTES + 5);
        bodies[7] = "x".repeat(2 * MAX_BATCH_BYTES);
        let (b, dropped) = batches(&bodies);
        assert_eq!(dropped.iter().map(|d| d.index).collect::<Vec<_>>(), vec![0, 7]);
        assert_eq!(indexes(&b), vec![vec![1, 2, 3, 4, 5, 6, 8, 9, 10, 11]]);
    }

    #[test]
    fn an_oversized_message_is_dropped_and_the_rest_batched() {
        let messages = [
            message("1", "first"),
            message("2", &"x".repeat(MAX_BATCH_BYTES)),
            message("3", "third"),
        ];
        let bodies = bodies(&messages);
        let (b, dropped) = batches(&bodies);
        assert_eq!(dropped.len(), 1);
        assert_eq!(dropped[0].index, 1);
        assert!(matches!(dropped[0].reason, DropReason::TooLarge { bytes } if bytes == bodies[1].len()));
        assert_eq!(
            b.concat().iter().map(|(_, body)| text(body)).collect::<Vec<_>>(),
            vec!["first", "third"]
        );
    }

    #[test]
    fn sender_faults_are_dropped_other_failures_are_retryable() {
        assert_eq!(refusals(3, &[]).unwrap(), vec![]);

        let dropped = refusals(
            5,
            &[
                failure("2", true, "InvalidMessageContents"),
                failure("4", true, "InvalidParameterValue"),
            ],
        )
        .unwrap();
        assert_eq!(
            dropped,
            vec![
                Dropped {
                    index: 2,
                    reason: DropReason::RejectedByQueue {
                        code: "InvalidMessageContents".into()
                    }
                },
                Dropped {
                    index: 4,
                    reason: DropReason::RejectedByQueue {
                        code: "InvalidParameterValue".into()
                    }
                },
            ]
        );
        assert_eq!(dropped[0].reason.code(), "rejected_by_queue");

        // One failure that is not the sender's fails the whole publish, with its code.
        match refusals(
            3,
            &[
                failure("2", true, "InvalidMessageContents"),
                failure("1", false, "InternalError"),
            ],
        ) {
            Err(PublishError::Refused { failed, total, code }) => {
                assert_eq!((failed, total, code.as_str()), (1, 3, "InternalError"));
            }
            other => panic!("expected Refused, got {other:?}"),
        }
        assert!(matches!(
            refusals(2, &[failure("0", false, "ServiceUnavailable"), failure("1", false, "InternalError")]),
            Err(PublishError::Refused { failed: 2, total: 2, ref code }) if code == "ServiceUnavailable"
        ));

        // An id that is not one of ours cannot be attributed: retryable even as a sender fault.
        assert!(matches!(
            refusals(3, &[failure("not ours", true, "InvalidMessageContents")]),
            Err(PublishError::Refused {
                failed: 1,
                total: 3,
                ..
            })
        ));
        assert!(matches!(
            refusals(3, &[failure("-1", true, "InvalidMessageContents")]),
            Err(PublishError::Refused { .. })
        ));
    }

    #[test]
    fn noncharacters_are_removed_and_everything_else_kept() {
        let kept = "Ça — 日本 📦 \u{FFFD} \u{FDCF} \u{FDF0} \u{10FFFD}";
        assert_eq!(without_noncharacters(kept.to_owned()), kept);
        assert_eq!(
            without_noncharacters("a\u{FFFE}b\u{FFFF}c\u{FDD0}d\u{FDEF}e\u{1FFFE}f\u{10FFFF}".to_owned()),
            "abcdef"
        );
    }

    #[test]
    fn noncharacters_never_reach_a_message_body() {
        let bodies = bodies(&[
            message("1", "in\u{FFFF}valid\u{FDD0} for SQS\u{FFFE}"),
            message("2", "fine"),
        ]);
        assert_eq!(
            bodies.iter().map(|b| text(b)).collect::<Vec<_>>(),
            vec!["invalid for SQS", "fine"]
        );
        assert!(!bodies[0].chars().any(is_noncharacter));
    }
}
