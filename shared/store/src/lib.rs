//! The timeline store: one DynamoDB table holding customers, the identifiers that identify
//! them, how customers were merged, and each customer's timeline. All reads and writes of that
//! table go through `TimelineStore`. ARCHITECTURE.md has the key table and the algorithms.
//!
//! - `ingest`: record an interaction exactly once (customer, conversation, entry); updates.
//! - `identity`: which customer an interaction belongs to (verified evidence links, claims
//!   suggest).
//! - `profiles`: a customer's group of merged customers, and the profile shown for it.
//! - `merges`: merge and unmerge, planned by pure functions over the pure `forest`.
//! - `ledger`: the append-only facts of who changed what; `suggestions`: link suggestions.
//! - `timeline`: a group's timeline pages, and splitting and joining conversations (the rule
//!   itself is the pure `conversation`).
//! - `privacy`: export and erasure.

#![warn(missing_docs)]

mod attributes;
mod conversation;
mod delivery;
mod forest;
mod identity;
mod ingest;
mod items;
mod ledger;
mod lifecycle;
mod merges;
mod objects;
mod outbound;
mod privacy;
mod profiles;
mod rollups;
mod segments;
mod suggestions;
mod surveys;
mod timeline;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use throughline_model::{CustomerId, MergeId};

pub use attributes::CompanyAttributes;
pub use conversation::ReasonMark;
pub use conversation::{ConversationRecord, DEFAULT_WINDOW};
pub use delivery::{AWAITING_TTL, AwaitingStatus, Observed};
pub use identity::VERIFIED_EVIDENCE_ACTOR;
pub use ingest::{Applied, Lane, Recorded};
pub use ledger::{LedgerAction, LedgerEntry};
pub use lifecycle::{Changed, Conversation, ConversationChange, QueueEntry, QueueFilter, QueuePage};
pub use merges::MergeRequest;
pub use objects::{s3_client, s3_failed};
pub use outbound::{Claim, IDEMPOTENCY_TTL, Remembered, SendResult, request_hash};
pub use privacy::{Erasure, ErasureStatus, Export};
pub use profiles::{CustomerProfile, IdentifierView};
pub use rollups::{MAX_REPORT_DAYS, RollupCell, RollupRead};
pub use segments::{SegmentMember, SegmentMembership, SegmentPage};
pub use suggestions::{LinkSuggestion, SuggestionStatus};
use throughline_service::hours::BusinessHours;
pub use timeline::{TimelineEntry, TimelineFilter, TimelinePage};

use items::{Item, key_item, keys, string_value};

/// Largest timeline page a caller may ask for.
pub const MAX_PAGE_SIZE: usize = 100;

/// Why a store operation failed; `ErrorCode` gives each its code and HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// A DynamoDB call failed (503: retry later).
    #[error("DynamoDB {operation} failed: {message}")]
    Dynamo {
        /// The DynamoDB operation (`GetItem`, `TransactWriteItems`…).
        operation: &'static str,
        /// What went wrong, with its causes; for logs (the error's `message` is generic).
        message: String,
    },
    /// An S3 call failed (503: retry later).
    #[error("S3 {operation} failed: {message}")]
    ObjectStore {
        /// The S3 operation (`ListObjectVersions`, `DeleteObject`).
        operation: &'static str,
        /// What went wrong, with its causes; for logs (the error's `message` is generic).
        message: String,
    },
    /// The store was built without something this operation needs.
    #[error("the store is not configured for this: {0}")]
    Unconfigured(&'static str),
    /// The detail (kept for `Debug`) may quote stored values: never shown or logged.
    #[error("a stored item or a request could not be read or built")]
    Corrupt(String),
    /// The cursor is not a timeline position this store hands out (400).
    #[error("cursor is not valid")]
    BadCursor,
    /// No such customer, or no customer owns the identifier looked up (404): the id, or the
    /// identifier's key.
    #[error("customer {0} not found")]
    CustomerNotFound(String),
    /// The customer named (its id), or its group's root, was erased (404).
    #[error("customer {0} was erased")]
    CustomerErased(String),
    /// Something else named is not found (404): what, by id (`merge mg_…`, `suggestion sg_…`).
    #[error("{0} not found")]
    NotFound(String),
    // The request contradicts the current state (409).
    /// The two customers are in one group already (409).
    #[error("the customers are already one customer")]
    AlreadyMerged,
    /// The merge named is not active (never made, or undone).
    #[error("merge {0} is not active")]
    NotMerged(MergeId),
    /// The merge needs more writes than one DynamoDB transaction takes (409).
    #[error("merging these groups changes {items} items; one transaction takes {limit}")]
    GroupTooLarge {
        /// Writes the merge's transaction would hold.
        items: usize,
        /// Most items one transaction takes (100).
        limit: usize,
    },
    /// The suggestion (its id) was accepted or rejected already (409).
    #[error("suggestion {0} was decided already")]
    SuggestionDecided(String),
    /// The interaction named is its conversation's first: nothing to split off (409).
    #[error("the conversation starts at that interaction")]
    NothingToSplit,
    /// A join that names no conversation (409).
    #[error("name at least two conversations")]
    NothingToJoin,
    /// A retry of a message whose last attempt is not `failed` or `unknown` (409): its status.
    #[error("the message is {0}: only a failed or unknown message can be retried")]
    NotRetryable(&'static str),
    /// Resolving a conversation (its id) that is resolved (409).
    #[error("conversation {0} is resolved already")]
    AlreadyResolved(String),
    /// Reopening a conversation (its id) that is not resolved (409).
    #[error("conversation {0} is not resolved")]
    NotResolved(String),
    /// Resolving a conversation with no confirmed reason where the company requires one (422).
    #[error("a reason for contact is required to resolve a conversation")]
    ReasonRequired,
    /// Other writers kept changing the same items; retrying later will do.
    #[error("{0} kept conflicting with other writers")]
    Contention(&'static str),
}

impl StoreError {
    /// The request contradicts the current state (the 409s).
    pub fn is_conflict(&self) -> bool {
        throughline_model::ErrorCode::status(self) == http::StatusCode::CONFLICT
    }
}

impl throughline_model::ErrorCode for StoreError {
    fn code(&self) -> &'static str {
        match self {
            StoreError::Dynamo { .. } | StoreError::ObjectStore { .. } | StoreError::Contention(_) => {
                "store_unavailable"
            }
            StoreError::Corrupt(_) | StoreError::Unconfigured(_) => "internal",
            StoreError::BadCursor => "bad_cursor",
            StoreError::CustomerNotFound(_) => "customer_not_found",
            StoreError::CustomerErased(_) => "customer_erased",
            StoreError::NotFound(_) => "not_found",
            StoreError::AlreadyMerged => "already_merged",
            StoreError::NotMerged(_) => "not_merged",
            StoreError::GroupTooLarge { .. } => "group_too_large",
            StoreError::SuggestionDecided(_) => "suggestion_decided",
            StoreError::NothingToSplit => "nothing_to_split",
            StoreError::NothingToJoin => "nothing_to_join",
            StoreError::NotRetryable(_) => "not_retryable",
            StoreError::AlreadyResolved(_) => "already_resolved",
            StoreError::NotResolved(_) => "not_resolved",
            StoreError::ReasonRequired => "reason_required",
        }
    }

    fn status(&self) -> http::StatusCode {
        use http::StatusCode;
        match self {
            StoreError::Dynamo { .. } | StoreError::ObjectStore { .. } | StoreError::Contention(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            StoreError::Corrupt(_) | StoreError::Unconfigured(_) => StatusCode::INTERNAL_SERVER_ERROR,
            StoreError::BadCursor => StatusCode::BAD_REQUEST,
            StoreError::CustomerNotFound(_) | StoreError::CustomerErased(_) | StoreError::NotFound(_) => {
                StatusCode::NOT_FOUND
            }
            StoreError::AlreadyMerged
            | StoreError::NotMerged(_)
            | StoreError::GroupTooLarge { .. }
            | StoreError::SuggestionDecided(_)
            | StoreError::NothingToSplit
            | StoreError::NothingToJoin
            | StoreError::NotRetryable(_)
            | StoreError::AlreadyResolved(_)
            | StoreError::NotResolved(_) => StatusCode::CONFLICT,
            StoreError::ReasonRequired => StatusCode::UNPROCESSABLE_ENTITY,
        }
    }

    fn message(&self) -> String {
        match self {
            StoreError::Dynamo { .. } | StoreError::ObjectStore { .. } | StoreError::Contention(_) => {
                "the store is busy or unavailable; retry later".into()
            }
            StoreError::Corrupt(_) | StoreError::Unconfigured(_) => "internal error".into(),
            StoreError::CustomerNotFound(_) => "no such customer".into(),
            StoreError::CustomerErased(_) => "the customer was erased".into(),
            // The rest name only ids and the rule that refused (no stored values).
            _ => self.to_string(),
        }
    }
}

fn dynamo<E: std::error::Error + 'static>(operation: &'static str) -> impl FnOnce(E) -> StoreError {
    move |e| StoreError::Dynamo {
        operation,
        message: aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string(),
    }
}

/// DynamoDB refused a write because its condition did not hold.
fn is_conditional_failure<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    e.as_service_error().and_then(|e| e.code()) == Some("ConditionalCheckFailedException")
}

/// A conditional write's outcome: `true` written, `false` its condition did not hold (the
/// caller's "already done" or "someone else's"), any other failure an error.
fn written<T, E, R>(operation: &'static str, result: Result<T, SdkError<E, R>>) -> Result<bool, StoreError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    match result {
        Ok(_) => Ok(true),
        Err(e) if is_conditional_failure(&e) => Ok(false),
        Err(e) => Err(dynamo(operation)(e)),
    }
}

/// Who asked for a change and why: recorded in the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// The caller's identity (an IAM ARN behind the API), or a system name.
    pub who: String,
    /// The IAM principal's unique id (`AIDA…`, `AROA…:<session>`), when an API caller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal_id: Option<String>,
    /// Why, in the actor's words; the ledger keeps it until an erasure redacts it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The timeline table and the clients and settings for it: every read and write of the table
/// goes through it.
#[derive(Debug, Clone)]
pub struct TimelineStore {
    client: Client,
    table: String,
    /// The conversation inactivity window.
    window: TimeDelta,
    /// The secret that keys erased identifiers' `SUPPRESSED#` items (`with_suppression_key`).
    suppression_key: Option<std::sync::Arc<[u8]>>,
    /// Where entries' raw objects are deleted on erasure (`with_objects`).
    objects: Option<aws_sdk_s3::Client>,
    /// The company's business hours (`with_business_hours`).
    business_hours: std::sync::Arc<BusinessHours>,
}

/// How often an optimistic write is tried before giving up (the caller then retries later:
/// SQS redelivers, the API answers 503).
const ATTEMPTS: usize = 10;

/// What one try of an optimistic write came to.
enum Attempt<T> {
    /// Written, or found done already: the answer.
    Done(T),
    /// A condition on what was read no longer held (another writer got there first): read
    /// again and plan again.
    Again,
}

/// The one read–plan–write loop of every optimistic write: `attempt` reads, plans, and writes
/// on the condition that what it read is unchanged, answering `Again` when that condition
/// failed. Tried `ATTEMPTS` times with a growing, jittered pause between tries, then
/// `Contention(what)`. `attempt` is given the try's number (0 first): later tries read
/// consistently.
async fn retry_optimistic<T, Try>(what: &'static str, mut attempt: impl FnMut(usize) -> Try) -> Result<T, StoreError>
where
    Try: std::future::Future<Output = Result<Attempt<T>, StoreError>>,
{
    for n in 0..ATTEMPTS {
        if n > 0 {
            backoff(n).await;
        }
        // Boxed: an attempt (a recording's most of all) is a large future, and a debug build's
        // stack holds every frame polling it.
        if let Attempt::Done(answer) = Box::pin(attempt(n)).await? {
            return Ok(answer);
        }
    }
    Err(StoreError::Contention(what))
}

/// Waits a little before trying a conflicting write again: up to 8 ms times the attempt, with
/// jitter so that writers that collided do not collide again.
pub(crate) async fn backoff(attempt: usize) {
    let jitter = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() % 8_000)
        .unwrap_or(0);
    tokio::time::sleep(std::time::Duration::from_micros(u64::from(jitter) * attempt as u64)).await;
}

impl TimelineStore {
    /// The store over `table` through `client`: the default conversation window, no
    /// suppression key and no S3 client (`deployed` adds both).
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            window: DEFAULT_WINDOW,
            suppression_key: None,
            objects: None,
            business_hours: std::sync::Arc::new(BusinessHours::always()),
        }
    }

    /// The store as the writer and the API run it: the table, through clients of `aws`, with
    /// the deployment's suppression key and S3 for erasing raw mail.
    pub fn deployed(aws: &aws_config::SdkConfig, table: impl Into<String>, suppression_key: &str) -> Self {
        Self::new(Client::new(aws), table)
            .with_suppression_key(suppression_key)
            .with_objects(s3_client(aws))
    }

    /// The S3 client that deletes entries' raw objects (raw mail) when their customer is
    /// erased. Required by the writer and the API: an erasure that meets an entry with an
    /// object and has no client stops with an error rather than leave the object behind.
    pub fn with_objects(mut self, s3: aws_sdk_s3::Client) -> Self {
        self.objects = Some(s3);
        self
    }

    /// The deployment's secret suppression key (SSM): erasure and ingestion key `SUPPRESSED#`
    /// items with it. Required by the writer and the API; a store without it refuses both.
    pub fn with_suppression_key(mut self, key: &str) -> Self {
        self.suppression_key = Some(key.as_bytes().into());
        self
    }

    pub(crate) fn suppression_key(&self) -> Result<&[u8], StoreError> {
        self.suppression_key
            .as_deref()
            .filter(|k| !k.is_empty())
            .ok_or(StoreError::Unconfigured("no suppression key (SUPPRESSION_KEY)"))
    }

    /// The conversation inactivity window (default 24 h).
    pub fn with_conversation_window(mut self, window: TimeDelta) -> Self {
        self.window = window;
        self
    }

    /// The company's business hours, for the rollups' business-hours times (default: around
    /// the clock, so business time is wall time).
    pub fn with_business_hours(mut self, hours: BusinessHours) -> Self {
        self.business_hours = std::sync::Arc::new(hours);
        self
    }

    /// Forgets a one-time value remembered by a request that then failed, so that the
    /// sender's retry is not taken for a replay.
    pub async fn forget(&self, namespace: &str, value: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_item(keys::replay(namespace, value))))
            .send()
            .await
            .map_err(dynamo("DeleteItem"))?;
        Ok(())
    }

    /// Remembers a one-time value until `until` (the table's TTL then removes it). `false` when
    /// it was remembered already.
    pub async fn remember(&self, namespace: &str, value: &str, until: DateTime<Utc>) -> Result<bool, StoreError> {
        let mut item = key_item(keys::replay(namespace, value));
        item.insert("expires_at".into(), AttributeValue::N(until.timestamp().to_string()));
        self.put_new(item).await
    }

    /// Puts an item unless one with its key exists; `false` when it did.
    async fn put_new(&self, item: Item) -> Result<bool, StoreError> {
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        written("PutItem", put)
    }

    /// Items by key, in one BatchGetItem per 100, asking again for what DynamoDB leaves
    /// unprocessed; those that do not exist are absent.
    async fn batch_get(&self, keys: Vec<(String, String)>, consistent: bool) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(100) {
            let mut request = Some(
                aws_sdk_dynamodb::types::KeysAndAttributes::builder()
                    .set_keys(Some(chunk.iter().cloned().map(key_item).collect()))
                    .consistent_read(consistent)
                    .build()
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            );
            while let Some(keys_and_attributes) = request.take() {
                let output = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, keys_and_attributes)
                    .send()
                    .await
                    .map_err(dynamo("BatchGetItem"))?;
                items.extend(
                    output
                        .responses
                        .unwrap_or_default()
                        .remove(&self.table)
                        .unwrap_or_default(),
                );
                request = output
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(&self.table))
                    .filter(|k| !k.keys.is_empty());
            }
        }
        Ok(items)
    }

    async fn get(&self, key: (String, String), consistent: bool) -> Result<Option<Item>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_item(key)))
            .consistent_read(consistent)
            .send()
            .await
            .map_err(dynamo("GetItem"))?;
        Ok(output.item)
    }

    /// Runs one planned write on its own, not in a transaction (a write of the one vocabulary
    /// the planners use); `false` when its condition did not hold.
    async fn write_one(&self, write: TransactWriteItem) -> Result<bool, StoreError> {
        if let Some(put) = write.put {
            let result = self
                .client
                .put_item()
                .table_name(put.table_name)
                .set_item(Some(put.item))
                .set_condition_expression(put.condition_expression)
                .set_expression_attribute_names(put.expression_attribute_names)
                .set_expression_attribute_values(put.expression_attribute_values)
                .send()
                .await;
            return written("PutItem", result);
        }
        if let Some(update) = write.update {
            let result = self
                .client
                .update_item()
                .table_name(update.table_name)
                .set_key(Some(update.key))
                .update_expression(update.update_expression)
                .set_condition_expression(update.condition_expression)
                .set_expression_attribute_names(update.expression_attribute_names)
                .set_expression_attribute_values(update.expression_attribute_values)
                .send()
                .await;
            return written("UpdateItem", result);
        }
        if let Some(delete) = write.delete {
            let result = self
                .client
                .delete_item()
                .table_name(delete.table_name)
                .set_key(Some(delete.key))
                .set_condition_expression(delete.condition_expression)
                .set_expression_attribute_names(delete.expression_attribute_names)
                .set_expression_attribute_values(delete.expression_attribute_values)
                .send()
                .await;
            return written("DeleteItem", result);
        }
        Err(StoreError::Corrupt("a condition check alone writes nothing".into()))
    }

    /// Runs a transaction; `false` when DynamoDB cancelled it (a condition did not hold, or a
    /// concurrent transaction touched the same items): the caller re-reads and decides.
    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<bool, StoreError> {
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_transaction_canceled_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(dynamo("TransactWriteItems")(e)),
        }
    }

    /// Every item of a partition whose sort key starts with `prefix` (all of them for ""), in
    /// key order (all pages).
    async fn query_prefix(&self, pk: &str, prefix: &str, consistent: bool) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let query = self.client.query().table_name(&self.table);
            let query = if prefix.is_empty() {
                query.key_condition_expression("pk = :pk")
            } else {
                query
                    .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                    .expression_attribute_values(":prefix", string_value(prefix))
            };
            let output = query
                .expression_attribute_values(":pk", string_value(pk))
                .consistent_read(consistent)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(dynamo("Query"))?;
            items.extend(output.items.unwrap_or_default());
            start = output.last_evaluated_key;
            if start.is_none() {
                return Ok(items);
            }
        }
    }

    /// Every customer that is the root of its group and not erased, oldest first. A full-table
    /// scan: for the local stack and small tables only; agents look customers up by identifier.
    pub async fn all_customers(&self) -> Result<Vec<CustomerId>, StoreError> {
        let mut customers = Vec::new();
        let mut start = None;
        loop {
            let output = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("sk = :profile AND attribute_not_exists(erased_at) AND (attribute_not_exists(#root) OR #root = customer_id)")
                .expression_attribute_names("#root", "root")
                .expression_attribute_values(":profile", string_value(keys::PROFILE))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(dynamo("Scan"))?;
            for item in output.items.unwrap_or_default() {
                customers.push(items::id_attr(&item, "customer_id")?);
            }
            start = output.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        customers.sort();
        Ok(customers)
    }
}
