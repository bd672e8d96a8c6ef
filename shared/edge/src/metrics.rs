//! Counters as CloudWatch Embedded Metric Format lines on stdout: CloudWatch turns them into
//! metrics with no API call on the request path. Dimensions are fixed reason codes, never data.

use serde_json::json;

/// The CloudWatch namespace of every metric.
pub const NAMESPACE: &str = "Throughline";

/// Events accepted with 200 but not turned into interactions (status callbacks, unknown types).
pub const IGNORED_EVENTS: &str = "IgnoredEvents";
/// Requests refused (bad signature, malformed body).
pub const REJECTED_REQUESTS: &str = "RejectedRequests";
/// Chat identity tokens that did not verify (the message was kept as an anonymous visitor's).
pub const UNVERIFIED_IDENTITY_TOKENS: &str = "UnverifiedIdentityTokens";
/// Interactions put on the queue.
pub const PUBLISHED_INTERACTIONS: &str = "PublishedInteractions";
/// A conversation's first response, by the channel it opened on (milliseconds of wall time).
pub const FIRST_RESPONSE_TIME: &str = "FirstResponseTime";
/// Conversations resolved, by confirmed reason (`none` without one).
pub const CONVERSATIONS_RESOLVED: &str = "ConversationsResolved";

/// `FIRST_RESPONSE_TIME` of a recorded interaction that was a conversation's first response:
/// `conversation_channel` the channel it opened on, `waited` how long the customer waited.
pub fn first_response(function: &str, conversation_channel: &str, waited: chrono::TimeDelta) {
    milliseconds(
        function,
        FIRST_RESPONSE_TIME,
        conversation_channel,
        u64::try_from(waited.num_milliseconds()).unwrap_or(0),
    );
}

/// Adds `value` to `metric` for this connector and reason.
pub fn count(connector: &str, metric: &str, reason: &str, value: u64) {
    emit(connector, metric, reason, (value, "Count"));
}

/// Records a duration of `milliseconds` as `metric` for this connector and reason (CloudWatch
/// keeps its distribution: p50, p90 are statistics of the metric).
pub fn milliseconds(connector: &str, metric: &str, reason: &str, milliseconds: u64) {
    emit(connector, metric, reason, (milliseconds, "Milliseconds"));
}

fn emit(connector: &str, metric: &str, reason: &str, value: (u64, &str)) {
    let now = chrono::Utc::now().timestamp_millis();
    println!("{}", emf_line(connector, metric, reason, value, now));
}

fn emf_line(connector: &str, metric: &str, reason: &str, (value, unit): (u64, &str), timestamp_ms: i64) -> String {
    json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["Connector", "Reason"]],
                "Metrics": [{ "Name": metric, "Unit": unit }]
            }]
        },
        "Connector": connector,
        "Reason": reason,
        metric: value
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_line_names_metric_and_dimensions() {
        let line: serde_json::Value =
            serde_json::from_str(&emf_line("sms", IGNORED_EVENTS, "status_callback", (1, "Count"), 7)).unwrap();
        assert_eq!(line["IgnoredEvents"], 1);
        assert_eq!(line["Reason"], "status_callback");
        assert_eq!(
            line["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"],
            "IgnoredEvents"
        );
        assert_eq!(line["_aws"]["Timestamp"], 7);
        let latency: serde_json::Value = serde_json::from_str(&emf_line(
            "timeline-writer",
            "DeliveryLatency",
            "sms",
            (1200, "Milliseconds"),
            7,
        ))
        .unwrap();
        assert_eq!(
            latency["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"],
            "Milliseconds"
        );
        assert_eq!(latency["DeliveryLatency"], 1200);
    }
}
