//! One raw email (RFC 5322 / MIME bytes, parsed with `mail-parser`) into one interaction, the
//! same for every source: SES via SNS, SES via S3, Mailgun. Pure: no network, no clock.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use mail_parser::{HeaderValue, MessageParser, MessagePart, MimeHeaders};
use sha2::{Digest, Sha256};
use throughline_model::{
    Attachment, AttachmentSource, Channel, Direction, EmailAddress, Handle, Interaction, InteractionId,
    InteractionKind, NewInteraction, Provider, ProviderMessageId, SenderCheck, StoredObject,
};

/// Longest text kept per field; the rest stays in the raw mail. Keeps an interaction well under
/// the SQS message and DynamoDB item limits.
pub const MAX_TEXT_BYTES: usize = 64 * 1024;

/// A provider's verdict on one check (SES `spfVerdict`, `dkimVerdict`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Fail,
    Gray,
    ProcessingFailed,
}

impl Verdict {
    pub fn parse(status: &str) -> Option<Self> {
        match status.trim().to_ascii_uppercase().as_str() {
            "PASS" => Some(Verdict::Pass),
            "FAIL" => Some(Verdict::Fail),
            "GRAY" => Some(Verdict::Gray),
            "PROCESSING_FAILED" => Some(Verdict::ProcessingFailed),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Gray => "gray",
            Verdict::ProcessingFailed => "processing_failed",
        }
    }
}

/// What the receiving service found about the mail's authenticity and content.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Verdicts {
    pub spf: Option<Verdict>,
    pub dkim: Option<Verdict>,
    pub dmarc: Option<Verdict>,
    pub spam: Option<Verdict>,
    pub virus: Option<Verdict>,
}

/// Everything about a mail that is not in its bytes.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub provider: Provider,
    /// The business mailbox that received it.
    pub mailbox: EmailAddress,
    /// The provider's id for this delivery, used when the mail has no `Message-ID`.
    pub delivery_id: String,
    pub verdicts: Verdicts,
    /// Where the raw mail is kept, so attachments can point into it (and erasure delete it).
    pub stored: Option<StoredObject>,
    pub received_at: DateTime<Utc>,
}

/// Why a mail cannot become an interaction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailProblem {
    #[error("the mail could not be parsed as a message")]
    Unparseable,
    #[error("the mail has no usable sender address (From)")]
    NoSender,
}

/// Does the mail have attachments (then the raw mail must be stored before normalizing)?
pub fn has_attachments(raw: &[u8]) -> bool {
    MessageParser::default()
        .parse(raw)
        .is_some_and(|m| m.attachment_count() > 0)
}

/// Normalizes one raw mail.
pub fn normalize(raw: &[u8], envelope: &Envelope) -> Result<Interaction, MailProblem> {
    let message = MessageParser::default().parse(raw).ok_or(MailProblem::Unparseable)?;
    let automated = automated_reason(&message);
    let from = message
        .from()
        .and_then(|f| f.first())
        .and_then(|a| a.address().map(str::to_owned));
    let bounced_recipient = (automated == Some("bounce"))
        .then(|| final_recipient(&message))
        .flatten();
    // A bounce is about the customer whose address failed, not about the mailer daemon.
    let customer_address = bounced_recipient
        .or_else(|| from.as_deref().and_then(normalize_address))
        .ok_or(MailProblem::NoSender)?;
    let display_name = message
        .from()
        .and_then(|f| f.first())
        .and_then(|a| a.name().map(str::to_owned))
        .filter(|n| !n.trim().is_empty());

    let message_id = message
        .message_id()
        .and_then(|id| ProviderMessageId::parse(id.trim_matches(['<', '>'])).ok())
        .unwrap_or_else(|| {
            ProviderMessageId::parse(&format!("{}:{}", envelope.provider.as_str(), envelope.delivery_id))
                .unwrap_or_else(|_| ProviderMessageId::parse(&sha256_hex(raw)).expect("hex is a valid id"))
        });
    let occurred_at = message
        .date()
        .and_then(|d| DateTime::from_timestamp(d.to_timestamp(), 0))
        .filter(|d| (*d - envelope.received_at).num_days().abs() < 365)
        .unwrap_or(envelope.received_at);

    let mailbox = Handle::Email {
        address: envelope.mailbox.clone(),
    };
    let customer = Handle::Email {
        address: customer_address.clone(),
    };
    let mut interaction = Interaction::new(NewInteraction {
        channel: Channel::Email,
        provider: envelope.provider,
        direction: Direction::Inbound,
        customer: customer.clone(),
        business_endpoint: mailbox.clone(),
        provider_message_id: message_id.clone(),
        occurred_at,
        received_at: envelope.received_at,
    });
    // Scoped to the sender: a mail from someone else that reuses a Message-ID is another
    // interaction, not a duplicate that would make the writer drop the genuine one.
    let sender = from
        .as_deref()
        .and_then(normalize_address)
        .unwrap_or_else(|| customer_address.clone());
    interaction.id = InteractionId::derive(envelope.provider, &mailbox, &sender_scoped(&message_id, &sender));
    interaction.customer_display_name = display_name;
    interaction.subject = message.subject().map(|s| truncate(s.trim(), 998));

    // A plain-text body as written (format=flowed joined); else the HTML body as text.
    let plain = message
        .text_part(0)
        .filter(|p| p.is_text() && !p.is_text_html())
        .map(body_text);
    let full = plain
        .or_else(|| message.body_text(0).map(Cow::into_owned))
        .unwrap_or_default();
    // Cut to what is kept before splitting: the split then never reads more than that, and a
    // quoted run that reaches the cut counts as the quoted tail.
    let full = truncate(&full, MAX_TEXT_BYTES);
    let (new_part, _quoted) = split_reply(&full);
    if !full.trim().is_empty() {
        interaction.text = Some(new_part.trim_end().to_owned());
        if new_part.trim_end() != full.trim_end() {
            interaction.full_text = Some(full.trim_end().to_owned());
        }
    }
    interaction.raw_object = envelope.stored.clone();
    interaction.html = message
        .html_part(0)
        .filter(|p| p.is_text_html())
        .and_then(|p| p.text_contents())
        .filter(|h| h.len() <= MAX_TEXT_BYTES)
        .map(str::to_owned);

    for (&id, part) in message
        .attachments
        .iter()
        .filter_map(|id| Some((id, message.parts.get(*id as usize)?)))
    {
        interaction.attachments.push(Attachment {
            source: match &envelope.stored {
                Some(stored) => AttachmentSource::MimePart {
                    bucket: stored.bucket.clone(),
                    key: stored.key.clone(),
                    part: id,
                },
                // Not stored: the mail had no attachments when checked; cannot happen for a part.
                None => continue,
            },
            content_type: part.content_type().map(|ct| match ct.subtype() {
                Some(sub) => format!("{}/{}", ct.ctype(), sub).to_ascii_lowercase(),
                None => ct.ctype().to_ascii_lowercase(),
            }),
            size_bytes: Some(part.len() as u64),
            file_name: part.attachment_name().map(str::to_owned),
            content_id: part.content_id().map(|id| id.trim_matches(['<', '>']).to_owned()),
            inline: part.content_disposition().is_some_and(|d| d.is_inline()),
        });
    }

    // Threads: the provider's ids, and a conversation key scoped to this mailbox and this
    // customer, so two customers answering the same newsletter never share a thread.
    let in_reply_to = message_ids(message.in_reply_to());
    let references = message_ids(message.references());
    let root = references
        .first()
        .or(in_reply_to.first())
        .cloned()
        .unwrap_or_else(|| message_id.to_string());
    interaction.thread.in_reply_to = in_reply_to.first().cloned();
    interaction.thread.references = references;
    interaction.thread.provider_thread_id = Some(format!(
        "email:{}",
        &sha256_hex(format!("{}\n{}\n{root}", mailbox.key(), customer.key()).as_bytes())[..32]
    ));

    let verdicts = envelope.verdicts;
    for (name, verdict) in [
        ("spf", verdicts.spf),
        ("dkim", verdicts.dkim),
        ("dmarc", verdicts.dmarc),
        ("spam", verdicts.spam),
        ("virus", verdicts.virus),
    ] {
        if let Some(v) = verdict {
            interaction
                .attributes
                .insert(format!("verdict.{name}"), v.as_str().into());
        }
    }
    // DKIM and DMARC both passing: the domain vouches that this sender is who From says.
    let verified = verdicts.dkim == Some(Verdict::Pass) && verdicts.dmarc == Some(Verdict::Pass);
    interaction.sender_check = Some(if verified {
        SenderCheck::Verified
    } else {
        SenderCheck::Unverified
    });
    // Kept for readers of the attribute from before the field; `sender_check` decides.
    interaction
        .attributes
        .insert("sender_verified".into(), verified.to_string());
    if let Some(reason) = automated {
        interaction.kind = InteractionKind::Automated;
        interaction.attributes.insert("automated".into(), reason.into());
    }
    if verdicts.spam == Some(Verdict::Fail) || verdicts.virus == Some(Verdict::Fail) {
        interaction.kind = InteractionKind::Quarantined;
    }
    Ok(interaction)
}

/// Lower-cased, with an internationalized domain in its ASCII (punycode) form.
pub fn normalize_address(address: &str) -> Option<EmailAddress> {
    let (local, domain) = address.trim().rsplit_once('@')?;
    let domain = idna::domain_to_ascii(domain).ok()?;
    EmailAddress::parse(&format!("{local}@{domain}")).ok()
}

/// Why a mail counts as automated, if it does: `auto_reply` (RFC 3834 `Auto-Submitted` and
/// the common vendor headers), `bounce` (a DSN, or from the mailer daemon), `list` (`List-Id`,
/// `List-Unsubscribe`, `Precedence: bulk|list|junk`).
fn automated_reason(message: &mail_parser::Message<'_>) -> Option<&'static str> {
    let header = |name: &'static str| message.header_raw(name).map(|v| v.trim().to_ascii_lowercase());
    let is_report = message.root_part().is_content_type("multipart", "report");
    let from_daemon = message
        .from()
        .and_then(|f| f.first())
        .and_then(|a| a.address().map(str::to_ascii_lowercase))
        .is_some_and(|a| a.starts_with("mailer-daemon@") || a.starts_with("postmaster@"));
    if is_report || from_daemon {
        return Some("bounce");
    }
    if header("auto-submitted").is_some_and(|v| v != "no")
        || header("x-autoreply").is_some()
        || header("x-autorespond").is_some()
    {
        return Some("auto_reply");
    }
    if header("list-id").is_some()
        || header("list-unsubscribe").is_some()
        || header("precedence").is_some_and(|v| matches!(v.as_str(), "bulk" | "list" | "junk"))
    {
        return Some("list");
    }
    None
}

/// The recipient a delivery status notification is about (`Final-Recipient: rfc822; x@y`).
fn final_recipient(message: &mail_parser::Message<'_>) -> Option<EmailAddress> {
    message.parts.iter().find_map(|part| {
        if !part.is_content_type("message", "delivery-status") {
            return None;
        }
        let text = String::from_utf8_lossy(part.contents()).into_owned();
        text.lines().find_map(|line| {
            let (name, value) = line.split_once(':')?;
            if !name.trim().eq_ignore_ascii_case("final-recipient") {
                return None;
            }
            let address = value.rsplit(';').next()?.trim();
            normalize_address(address)
        })
    })
}

/// A text part's text, with `format=flowed` (RFC 3676) soft line breaks joined.
fn body_text(part: &MessagePart<'_>) -> String {
    let text = part.text_contents().unwrap_or_default().to_owned();
    let flowed = part
        .content_type()
        .and_then(|ct| ct.attribute("format"))
        .is_some_and(|f| f.eq_ignore_ascii_case("flowed"));
    if !flowed {
        return text;
    }
    let delsp = part
        .content_type()
        .and_then(|ct| ct.attribute("delsp"))
        .is_some_and(|d| d.eq_ignore_ascii_case("yes"));
    unflow(&text, delsp)
}

/// Joins flowed lines: a line ending in a space continues on the next (the signature separator
/// `-- ` excepted); space-stuffing is removed; with `DelSp=yes` the trailing space goes too.
pub fn unflow(text: &str, delsp: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let line = line.strip_prefix(' ').unwrap_or(line);
        let soft = line.ends_with(' ') && line != "-- ";
        out.push_str(if soft && delsp {
            line.strip_suffix(' ').unwrap_or(line)
        } else {
            line
        });
        if !soft {
            out.push('\n');
        }
    }
    if out.ends_with('\n') && !text.ends_with('\n') {
        out.pop();
    }
    out
}

/// The new part of a reply and the rest (signature and quoted history). The split is at the
/// first of: the signature separator `-- `, an attribution line (`On … wrote:`, also across two
/// lines), an Outlook `-----Original Message-----` or `From:` header block, or a run of `>`
/// quoted lines that lasts to the end. Nothing is cut when the new part would be empty.
///
/// Linear in the text: the quoted tail is found in one backward pass and "anything written
/// before this line" is a flag, so no line looks at all the others (a mail of 500 000 `>`
/// lines once kept this function past the Lambda timeout).
pub fn split_reply(text: &str) -> (&str, &str) {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    // Lines from here on are all quoted or blank.
    let quoted_tail = lines
        .iter()
        .rposition(|l| !(l.starts_with('>') || l.trim().is_empty()))
        .map_or(0, |last| last + 1);
    let attribution = |l: &str| {
        let l = l.trim();
        (l.starts_with("On ") || l.starts_with("Le ") || l.starts_with("Am "))
            && (l.ends_with("wrote:") || l.ends_with("a écrit :") || l.ends_with("schrieb:"))
    };
    let mut offset = 0;
    let mut written = false;
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_end_matches(['\r', '\n']);
        let next = lines.get(i + 1).map(|l| l.trim()).unwrap_or_default();
        let starts_history = trimmed == "-- "
            || trimmed == "--"
            || attribution(trimmed)
            || (trimmed.trim().starts_with("On ") && attribution(&format!("{trimmed} {next}")))
            || trimmed.trim().starts_with("-----Original Message-----")
            || (trimmed.starts_with("From: ") && lines.iter().skip(i).take(4).any(|l| l.starts_with("Sent: ")))
            || (trimmed.starts_with('>') && i >= quoted_tail);
        if starts_history
            && written
            && let Some(split) = text.split_at_checked(offset)
        {
            return split;
        }
        written |= !line.trim().is_empty();
        offset += line.len();
    }
    (text, "")
}

/// What an email's interaction id is derived from: its Message-ID and its sender's normalized
/// address, length-prefixed and hashed (so no two pairs give one input and any Message-ID fits).
pub fn sender_scoped(message_id: &ProviderMessageId, sender: &EmailAddress) -> ProviderMessageId {
    let mut input = Vec::new();
    for part in [message_id.as_str(), sender.as_str()] {
        input.extend_from_slice(&(part.len() as u64).to_be_bytes());
        input.extend_from_slice(part.as_bytes());
    }
    let hex = sha256_hex(&input);
    // 64 hex digits always parse; the fallback only keeps this function total.
    ProviderMessageId::parse(&hex).unwrap_or_else(|_| message_id.clone())
}

fn truncate(text: &str, max_bytes: usize) -> String {
    if text.len() <= max_bytes {
        return text.to_owned();
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// Message ids of an `In-Reply-To` or `References` header, without angle brackets.
fn message_ids(value: &HeaderValue<'_>) -> Vec<String> {
    let clean = |id: &str| id.trim().trim_matches(['<', '>']).to_owned();
    match value {
        HeaderValue::TextList(ids) => ids.iter().map(|id| clean(id)).collect(),
        HeaderValue::Text(id) => vec![clean(id)],
        _ => Vec::new(),
    }
    .into_iter()
    .filter(|id| !id.is_empty())
    .collect()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}
