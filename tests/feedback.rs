//! Satisfaction surveys end to end: a resolution through the API sends the survey through the
//! sender (the provider stub receives it), the customer's answers come back through the queue
//! and the writer, and land on the timeline as feedback and in the report.

use std::sync::Arc;

use chrono::{TimeDelta, Utc};
use serde_json::{Value, json};
use throughline_model::*;
use throughline_queue::InteractionPublisher;
use throughline_timeline_api::{Surveys, signing_keys};

use crate::lifecycle::says;
use crate::outbound::{Outbound, outbound};

impl Outbound {
    /// The API with the stack's survey settings (from SSM, as deployed) and feedback key.
    async fn with_surveys(mut self) -> Self {
        self.stack.put_sample_secrets().await.unwrap();
        let name = &self.stack.resources.parameters["SurveysParameterName"];
        let settings = throughline_edge::config::Reloading::from_parameter(
            &self.stack.aws,
            name,
            throughline_feedback::survey::parse_settings,
            std::time::Duration::from_secs(60),
        )
        .await
        .unwrap();
        self.api.surveys = Some(Surveys {
            settings: Arc::new(settings),
            keys: signing_keys(throughline_testkit::secrets::TEST_FEEDBACK_KEY).unwrap(),
        });
        self
    }

    /// The group's timeline entries of kind `feedback`, oldest first.
    async fn feedback(&self, customer: &CustomerId) -> Vec<Value> {
        let (status, page) = self.client().timeline(customer, "").await;
        assert_eq!(status, 200, "{page}");
        let mut entries: Vec<Value> = page["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "feedback")
            .cloned()
            .collect();
        entries.sort_by_key(|e| e["occurred_at"].as_str().unwrap().to_owned());
        entries
    }

    /// Today's report.
    async fn csat_today(&self) -> Value {
        let today = Utc::now().date_naive();
        let (status, report) = self
            .client()
            .raw("GET", &format!("/reports/summary?from={today}&to={today}"), None)
            .await;
        assert_eq!(status, 200, "{report}");
        report["csat"].clone()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_resolution_is_surveyed_by_sms_and_the_rating_and_remark_land_on_the_timeline_and_in_the_report() {
    let o = outbound().await.with_reasons().await.with_surveys().await;
    let start = Utc::now() - TimeDelta::minutes(20);
    let customer = o
        .customer_says(&says("My parcel has not arrived yet", "SMfb0", start))
        .await;
    let conversation = o.only_conversation(&customer).await;
    let id = conversation["conversation_id"].as_str().unwrap().to_owned();
    let (status, answer) = o
        .client()
        .send_message(&customer, "fb-reply-1", json!({ "text": "It arrives tomorrow." }))
        .await;
    assert_eq!(status, 202, "{answer}");
    o.drain().await;
    let replies_before = o.calls().await.len();

    // Resolved: the survey is recorded and queued on the channel she wrote on.
    let (status, resolved) = o.client().resolve(&id, &["delivery/late"]).await;
    assert_eq!(status, 200, "{resolved}");
    let survey = &resolved["survey"];
    assert_eq!(survey["status"], "queued", "{resolved:#}");
    assert_eq!(survey["channel"], "sms");
    let survey_id = survey["survey_id"].as_str().unwrap().to_owned();
    o.drain().await;
    let calls = o.calls().await;
    assert_eq!(calls.len(), replies_before + 1, "one call: the survey");
    let sent = calls.last().unwrap();
    assert_eq!(sent.provider, "twilio");
    let form: Vec<(String, String)> = form_urlencoded::parse(sent.body.as_bytes()).into_owned().collect();
    let body = form.iter().find(|(k, _)| k == "Body").map(|(_, v)| v.as_str());
    assert_eq!(
        body,
        Some("How did we do? Reply with a number from 1 (poor) to 5 (great).")
    );
    let survey_entry = o
        .reply_entry(&customer, survey["interaction_id"].as_str().unwrap())
        .await;
    assert_eq!(survey_entry["attributes"]["survey"], survey_id.as_str());
    assert_eq!(survey_entry["author"], "throughline:survey");
    assert_eq!(survey_entry["conversation_id"], id.as_str());
    assert_eq!(o.csat_today().await["surveys"], 1);

    // She answers "5", then "thanks!"; the "5" is delivered twice.
    let five = says("5", "SMfb1", Utc::now());
    o.customer_says(&five).await;
    InteractionPublisher::new(o.stack.sqs(), &o.stack.interactions_queue().url)
        .publish(&[QueueMessage::Interaction(Box::new(five.clone()))])
        .await
        .unwrap();
    o.customer_says(&says("thanks!", "SMfb2", Utc::now() + TimeDelta::seconds(1)))
        .await;
    let feedback = o.feedback(&customer).await;
    assert_eq!(feedback.len(), 2, "one entry each, the redelivery none: {feedback:#?}");
    assert_eq!(feedback[0]["feedback"]["rating"], 5);
    assert_eq!(feedback[0]["feedback"]["survey_id"], survey_id.as_str());
    assert_eq!(
        feedback[0]["conversation_id"],
        id.as_str(),
        "in the conversation surveyed"
    );
    assert!(feedback[0]["feedback"].get("remark").is_none());
    assert_eq!(feedback[1]["feedback"]["remark"], "thanks!");
    assert!(feedback[1]["feedback"].get("rating").is_none());
    // Answers do not reopen the conversation.
    let after = o.only_conversation(&customer).await;
    assert_eq!(
        (after["status"].as_str(), after["reopens"].as_i64()),
        (Some("resolved"), Some(0))
    );
    let csat = o.csat_today().await;
    assert_eq!(
        (&csat["surveys"], &csat["responses"], &csat["average"], &csat["ratings"]),
        (&json!(1), &json!(1), &json!(5.0), &json!([0, 0, 0, 0, 1])),
        "{csat:#}"
    );
    let today = Utc::now().date_naive();
    let (_, by_reason) = o
        .client()
        .raw(
            "GET",
            &format!("/reports/summary?from={today}&to={today}&reason=delivery/late"),
            None,
        )
        .await;
    assert_eq!(by_reason["csat"]["responses"], 1, "{by_reason:#}");

    // She changes her mind within the validity: the latest rating counts.
    o.customer_says(&says("3", "SMfb3", Utc::now() + TimeDelta::seconds(2)))
        .await;
    let csat = o.csat_today().await;
    assert_eq!(
        (&csat["responses"], &csat["ratings"]),
        (&json!(1), &json!([0, 0, 1, 0, 0]))
    );
    assert_eq!(o.feedback(&customer).await.last().unwrap()["feedback"]["replaces"], 5);

    // Anything else is an ordinary message: it reopens the conversation.
    o.customer_says(&says(
        "Actually, one more question",
        "SMfb4",
        Utc::now() + TimeDelta::seconds(3),
    ))
    .await;
    let reopened = o.only_conversation(&customer).await;
    assert_eq!(reopened["status"], "open", "{reopened:#}");
    assert_eq!(o.feedback(&customer).await.len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn no_survey_goes_to_a_number_that_opted_out() {
    let o = outbound().await.with_surveys().await;
    let start = Utc::now() - TimeDelta::minutes(5);
    let customer = o.customer_says(&says("Where is my order?", "SMfbs0", start)).await;
    o.customer_says(&says("STOP", "SMfbs1", start + TimeDelta::minutes(1)))
        .await;
    let id = o.only_conversation(&customer).await["conversation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, resolved) = o.client().resolve(&id, &[]).await;
    assert_eq!(status, 200, "{resolved}");
    assert_eq!(
        (
            resolved["survey"]["status"].as_str(),
            resolved["survey"]["reason"].as_str()
        ),
        (Some("not_sent"), Some("recipient_blocked")),
        "{resolved:#}"
    );
    o.drain().await;
    assert!(o.calls().await.is_empty(), "nothing sent");
    assert_eq!(o.csat_today().await["surveys"], 0);
}
