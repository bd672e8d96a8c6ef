//! What a request brings: its IAM caller and its JSON bodies, parsed at the edge.

use lambda_http::{Request, RequestExt};
use serde::Deserialize;
use throughline_model::{
    Channel, ConversationId, CustomerId, IdempotencyKey, InteractionId, MessengerTag, OutboundAttachment,
    WhatsappTemplate,
};

use crate::ApiError;

/// The longest `reason` an agent may give (bytes): it is stored on ledger entries.
pub const MAX_REASON_BYTES: usize = 1024;

/// Who is calling, as API Gateway's IAM authorizer authenticated them: the principal's ARN
/// and its unique id. An assumed role's ARN ends in a session name the caller chose; the
/// principal id (`AROA…:<session>`) names the role itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub arn: String,
    pub principal_id: Option<String>,
}

impl Caller {
    /// The caller of an unsigned request on the local stack.
    pub(crate) fn unsigned() -> Self {
        Caller {
            arn: "unauthenticated".into(),
            principal_id: None,
        }
    }
}

/// The IAM caller of a request, if its context names one.
pub fn caller(request: &Request) -> Option<Caller> {
    use lambda_http::request::RequestContext;
    match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => {
            let iam = context.authorizer.as_ref()?.iam.as_ref()?;
            Some(Caller {
                arn: iam.user_arn.clone().filter(|a| !a.is_empty())?,
                principal_id: iam
                    .user_id
                    .clone()
                    .or_else(|| iam.caller_id.clone())
                    .filter(|p| !p.is_empty()),
            })
        }
        _ => None,
    }
}

/// A free-text reason for a change, at most `MAX_REASON_BYTES`: stored on ledger entries.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub(crate) struct Reason(String);

impl TryFrom<String> for Reason {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        if text.len() > MAX_REASON_BYTES {
            return Err(format!("reason is longer than {MAX_REASON_BYTES} bytes"));
        }
        Ok(Reason(text))
    }
}

impl From<Reason> for String {
    fn from(reason: Reason) -> Self {
        reason.0
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReasonBody {
    #[serde(default)]
    pub(crate) reason: Option<Reason>,
}

/// Erasure is irreversible: the privacy officer says why (a ticket, a request reference).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ErasureBody {
    pub(crate) reason: Reason,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MergeBody {
    pub(crate) source_customer_id: CustomerId,
    #[serde(default)]
    pub(crate) reason: Option<Reason>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SplitBody {
    pub(crate) at_interaction_id: InteractionId,
    #[serde(default)]
    pub(crate) reason: Option<Reason>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct JoinBody {
    pub(crate) conversation_ids: Vec<ConversationId>,
    #[serde(default)]
    pub(crate) reason: Option<Reason>,
}

/// The longest assignee an agent may name (bytes): a principal's ARN or a user name.
pub(crate) const MAX_ASSIGNEE_BYTES: usize = 256;

/// Who a conversation is assigned to: a principal (an IAM ARN, a user name), not empty.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub(crate) struct Assignee(String);

impl TryFrom<String> for Assignee {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        if text.trim().is_empty() || text.len() > MAX_ASSIGNEE_BYTES || text.chars().any(char::is_control) {
            return Err(format!(
                "assignee must be 1 to {MAX_ASSIGNEE_BYTES} bytes of printable text"
            ));
        }
        Ok(Assignee(text))
    }
}

impl From<Assignee> for String {
    fn from(assignee: Assignee) -> Self {
        assignee.0
    }
}

/// `POST /conversations/{id}/resolve`: optionally the reasons to confirm.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResolveBody {
    #[serde(default)]
    pub(crate) reasons: Vec<String>,
    #[serde(default)]
    pub(crate) reason: Option<Reason>,
}

/// `POST /conversations/{id}/assign`: `null` unassigns.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AssignBody {
    pub(crate) assignee: Option<Assignee>,
    #[serde(default)]
    pub(crate) reason: Option<Reason>,
}

/// `PUT /customers/{id}/attributes`: every company attribute of the customer (they replace
/// the ones before).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AttributesBody {
    pub(crate) attributes: serde_json::Value,
    #[serde(default)]
    pub(crate) reason: Option<Reason>,
}

/// `PUT /conversations/{id}/reasons`: the confirmed reasons, all of them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReasonsBody {
    pub(crate) reasons: Vec<String>,
    #[serde(default)]
    pub(crate) reason: Option<Reason>,
}

/// A reply to a customer (`POST /customers/{id}/messages`). Without `channel`/`to` it goes
/// where the customer is (see `outbound`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MessageBody {
    #[serde(default)]
    pub(crate) text: Option<String>,
    #[serde(default)]
    pub(crate) attachments: Vec<OutboundAttachment>,
    #[serde(default)]
    pub(crate) conversation_id: Option<ConversationId>,
    #[serde(default)]
    pub(crate) in_reply_to: Option<InteractionId>,
    #[serde(default)]
    pub(crate) channel: Option<Channel>,
    /// One of the customer's identifier keys (`phone:+14155550100`).
    #[serde(default)]
    pub(crate) to: Option<String>,
    #[serde(default)]
    pub(crate) whatsapp_template: Option<WhatsappTemplate>,
    #[serde(default)]
    pub(crate) messenger_tag: Option<MessengerTag>,
}

/// The request's `Idempotency-Key` header, required on sends.
pub(crate) fn idempotency_key(request: &Request) -> Result<IdempotencyKey, ApiError> {
    request
        .headers()
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| IdempotencyKey::parse(v).ok())
        .ok_or_else(|| {
            ApiError::bad(
                "invalid_header",
                "an Idempotency-Key header of 1 to 255 visible ASCII characters is required",
            )
        })
}

/// The request body as `T`; an empty body is `{}`.
pub(crate) fn body<T: serde::de::DeserializeOwned>(request: &Request) -> Result<T, ApiError> {
    let bytes = request.body().as_ref();
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    serde_json::from_slice(bytes).map_err(|e| {
        // serde's message names the field and the rule, never the value's content.
        ApiError::bad(
            "invalid_body",
            format!(
                "body is not valid: {}",
                e.to_string().split(" at line").next().unwrap_or("")
            ),
        )
    })
}
