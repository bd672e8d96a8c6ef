//! Providers' codes: error codes in an agent's words, one table per provider, and Twilio's
//! message statuses; for the sender (what a send call answered), the connectors (what a status
//! event reports later) and reconciliation (what a message's record says) alike.

use crate::DeliveryStatus;

/// A Twilio message `status` (a callback's `MessageStatus`, a fetched message's `status`) as the
/// status machine's, or `None` for the steps before `sent` (`queued`, `accepted`, `sending`,
/// `scheduled`…), which have no state of their own.
pub fn twilio_status(status: &str) -> Option<DeliveryStatus> {
    Some(match status.trim() {
        "sent" => DeliveryStatus::Sent,
        "delivered" => DeliveryStatus::Delivered,
        "read" => DeliveryStatus::Read,
        "undelivered" => DeliveryStatus::Undelivered,
        "failed" | "canceled" => DeliveryStatus::Failed,
        _ => return None,
    })
}

/// Twilio's error codes in an agent's words (https://www.twilio.com/docs/api/errors).
pub fn twilio(code: i64) -> String {
    match code {
        20003 => "Twilio refused Throughline's credentials: check the Twilio account in the send credentials",
        20429 => "Twilio is rate limiting this account; the message will be tried again",
        21211 => "the recipient's number is not a valid phone number",
        21408 => "this Twilio account may not send to the recipient's country",
        21606 => "this number cannot send to the recipient (not an SMS-capable sender for that destination)",
        21610 => "the recipient replied STOP to this number: nothing can be sent until they reply START",
        21612 => "Twilio cannot route a message between these two numbers",
        21614 => "the recipient's number cannot receive SMS (not a mobile number)",
        21617 => "the text is too long for one message",
        21635 => "the recipient's number is a landline",
        30001 => "Twilio's queue for this sender overflowed: too many messages at once",
        30002 => "the Twilio account is suspended",
        30003 => "the recipient's phone was unreachable (off, or out of coverage)",
        30004 => "the message was blocked (the recipient or their carrier blocks this sender)",
        30005 => "the recipient's number is unknown or no longer in service",
        30006 => "the recipient's number is a landline or its carrier is unreachable",
        30007 => "the carrier filtered the message (as spam, or for its content)",
        30008 => "the carrier could not deliver it and gave no reason",
        30034 => "the sending number is not registered for A2P 10DLC messaging in the US",
        63024 => "the recipient cannot receive WhatsApp messages",
        63016 => "the WhatsApp 24-hour window is closed: only an approved template can be sent",
        63013 => "WhatsApp refused the message under its channel policy",
        63021 => "WhatsApp refused the template's content",
        _ => return format!("Twilio reported error {code}"),
    }
    .to_owned()
}

/// Graph API error codes: whether another try may succeed, and what happened in an agent's words
/// (WhatsApp Cloud API error codes; Messenger Send API errors).
pub fn meta(code: i64, subcode: Option<i64>) -> (bool, String) {
    let (transient, reason) = match (code, subcode) {
        (1 | 2, _) | (131000 | 131016, _) => (true, "Meta had a temporary problem; the message will be tried again"),
        (4 | 17 | 32 | 613 | 80007 | 130429, _) => (
            true,
            "Meta is rate limiting this sender; the message will be tried again",
        ),
        (131056, _) => (
            true,
            "too many messages to this customer in a short time; the message will be tried again",
        ),
        (1200, _) => (
            true,
            "Messenger could not send it just now; the message will be tried again",
        ),
        (131047, _) | (470, _) => (
            false,
            "the WhatsApp 24-hour window is closed: only an approved template can be sent",
        ),
        (10, Some(2018278)) | (10, Some(2534022)) => {
            (false, "the Messenger 24-hour window is closed for this customer")
        }
        (551, _) => (false, "this person is not available on Messenger right now"),
        (131026, _) => (
            false,
            "WhatsApp could not deliver to this number (not on WhatsApp, or an old app)",
        ),
        (131049, _) => (
            false,
            "WhatsApp held it back to keep the customer's experience healthy (too many business messages)",
        ),
        (131050, _) => (false, "the customer stopped marketing messages from this business"),
        (131051, _) => (false, "WhatsApp does not support this kind of message"),
        (131052 | 131053, _) => (false, "WhatsApp could not fetch the attachment from its URL"),
        (132000 | 132001 | 132005 | 132007 | 132012, _) => {
            (false, "WhatsApp refused the template (name, language or parameters)")
        }
        (368, _) | (131031, _) => (false, "Meta has blocked this sender for a policy violation"),
        (190, _) => (false, "Meta refused the access token: renew it in the send credentials"),
        (10 | 200 | 3, _) => (false, "this app lacks the permission to send as this page or number"),
        (100, _) => (false, "Meta refused a parameter of the message (e.g. the recipient id)"),
        _ => (false, "Meta reported a failure"),
    };
    (transient, format!("{reason} (error {code})"))
}
