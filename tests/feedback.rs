//! Satisfaction surveys end to end: a resolution through the API sends the survey through the
//! sender (the provider stub receives it), the customer's answers come back through the queue
//! and the writer, and land on the timeline as feedback and in the report.

use std::sync::Arc;

use chrono::{TimeDelta, Utc};
use serde_json::{Value, json};
use throughline_feedback::signing_keys;
use throughline_model::*;
use throughline_queue::InteractionPublisher;
use throughline_timeline_api::Surveys;

use lambda_http::http::StatusCode;
use throughline_e2e::{body_text, page_request, rating_page};

use crate::lifecycle::says;
use crate::outbound::{Outbound, mail_from_ada, outbound};

impl Outbound {
    /// The API with the stack's survey settings (from SSM, as deployed) and feedback key.
    async fn with_surveys(mut self) -> Self {
        let settings = self
            .stack_document("SurveysParameterName", throughline_feedback::survey::parse_settings)
            .await;
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

    /// The customer's one conversation resolved (no reasons): its id and the API's answer.
    async fn resolve_only_conversation(&self, customer: &CustomerId) -> (String, Value) {
        let id = self.only_conversation(customer).await["conversation_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let (status, resolved) = self.client().resolve(&id, &[]).await;
        assert_eq!(status, 200, "{resolved}");
        (id, resolved)
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
    // Her calculated attributes count the latest rating of the survey.
    let (_, profile) = o.client().profile(&customer).await;
    assert_eq!(
        (
            &profile["calculated"]["ratings"],
            &profile["calculated"]["average_rating"],
            &profile["calculated"]["last_rating"]
        ),
        (&json!(1.0), &json!(3.0), &json!(3.0)),
        "{profile:#}"
    );

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
    let (_, resolved) = o.resolve_only_conversation(&customer).await;
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

/// The form id a rating page's form carries.
fn form_of(page: &str) -> String {
    let (_, after) = page
        .split_once("name=\"form\" value=\"")
        .unwrap_or_else(|| panic!("no form: {page}"));
    after[..after.find('"').unwrap()].to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_email_survey_links_to_the_rating_page_where_one_click_rates_and_a_remark_follows() {
    let o = outbound().await.with_surveys().await;
    let question = mail_from_ada(
        "ada-fb1@mail.example.com",
        "Subject: Order A-2002\r\n",
        "Has it shipped?",
    );
    let customer = o.customer_wrote(&question).await;
    let (id, resolved) = o.resolve_only_conversation(&customer).await;
    assert_eq!(
        (
            resolved["survey"]["status"].as_str(),
            resolved["survey"]["channel"].as_str()
        ),
        (Some("queued"), Some("email")),
        "{resolved:#}"
    );
    o.drain().await;

    // The mail SES sent her, in her thread, with the page's link.
    let sent = o.stack.ses_sent().await.unwrap();
    let (_, _, raw) = sent.last().unwrap();
    let mail = mail_parser::MessageParser::default().parse(raw.as_bytes()).unwrap();
    assert_eq!(
        mail.to().and_then(|to| to.first()).and_then(|a| a.address()),
        Some("ada@example.com")
    );
    assert_eq!(mail.in_reply_to().as_text(), Some("ada-fb1@mail.example.com"));
    let text = mail.body_text(0).unwrap().into_owned();
    let link = text
        .split_whitespace()
        .find(|word| word.starts_with("https://feedback.acme.example/feedback/sv_"))
        .unwrap_or_else(|| panic!("no link in the survey: {text}"))
        .to_owned();
    assert!(
        !link.contains("ada") && !link.contains("example.com/"),
        "nothing of hers in {link}"
    );

    // Opening the link (as a mail scanner would, too) shows the question and records nothing.
    let page = rating_page(&o.stack);
    let shown = throughline_rating_page::handle(page_request(&link, None), &page).await;
    assert_eq!(shown.status(), StatusCode::OK);
    let policy = shown.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(policy.starts_with("default-src 'none'"), "{policy}");
    assert_eq!(shown.headers()["referrer-policy"], "no-referrer");
    let html = body_text(&shown);
    assert!(html.contains("How did we do?"), "{html}");
    o.write().await;
    assert!(o.feedback(&customer).await.is_empty());

    // One click on 4 (clicked twice: one answer), then a remark from the thanks page.
    let click = [("form", form_of(&html)), ("rating", "4".to_owned())];
    let click: Vec<(&str, &str)> = click.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut thanks = String::new();
    for _ in 0..2 {
        let rated = throughline_rating_page::handle(page_request(&link, Some(&click)), &page).await;
        assert_eq!(rated.status(), StatusCode::OK);
        thanks = body_text(&rated);
        assert!(thanks.contains("Your rating: 4 of 5"), "{thanks}");
    }
    o.write().await;
    let feedback = o.feedback(&customer).await;
    assert_eq!(feedback.len(), 1, "the double click is one answer: {feedback:#?}");
    assert_eq!(feedback[0]["feedback"]["rating"], 4);
    assert_eq!(feedback[0]["feedback"]["survey_id"], resolved["survey"]["survey_id"]);
    assert_eq!(feedback[0]["conversation_id"], id.as_str());
    assert_eq!(feedback[0]["channel"], "email");
    assert_eq!(feedback[0]["attributes"]["via"], "rating_page");
    let remark = [
        ("form", form_of(&thanks)),
        ("rating", "4".to_owned()),
        ("remark", "Quick and kind, thank you".to_owned()),
    ];
    let remark: Vec<(&str, &str)> = remark.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let done = throughline_rating_page::handle(page_request(&link, Some(&remark)), &page).await;
    assert_eq!(done.status(), StatusCode::OK);
    assert!(!body_text(&done).contains("<textarea"));
    o.write().await;
    let feedback = o.feedback(&customer).await;
    assert_eq!(feedback.len(), 2, "{feedback:#?}");
    assert_eq!(feedback[1]["feedback"]["remark"], "Quick and kind, thank you");
    assert_eq!(feedback[1]["feedback"]["replaces"], 4);
    let after = o.only_conversation(&customer).await;
    assert_eq!(after["status"], "resolved", "answers do not reopen: {after:#}");
    let csat = o.csat_today().await;
    assert_eq!(
        (&csat["surveys"], &csat["responses"], &csat["ratings"]),
        (&json!(1), &json!(1), &json!([0, 0, 0, 1, 0])),
        "{csat:#}"
    );

    // An altered link is refused, an expired one closed; a client that is not a browser gets
    // the JSON error. Nothing is queued for any of them.
    let (signed, mac) = link.rsplit_once('.').unwrap();
    let forged = format!("{signed}.{}", mac.chars().rev().collect::<String>());
    let refused = throughline_rating_page::handle(page_request(&forged, Some(&click)), &page).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let sample = throughline_rating_page::handle(
        throughline_e2e::sample_request("rating-page/01-forged-link.json"),
        &page,
    )
    .await;
    assert_eq!(sample.status(), StatusCode::FORBIDDEN);
    assert!(body_text(&sample).contains("We do not recognize this link."));
    let survey_id = resolved["survey"]["survey_id"].as_str().unwrap();
    let expired = throughline_feedback::FeedbackToken {
        survey: survey_id.to_owned(),
        expires_at: Utc::now() - TimeDelta::minutes(1),
    }
    .sign(&page.keys[0]);
    let expired = format!("https://feedback.acme.example/feedback/{expired}");
    let closed = throughline_rating_page::handle(page_request(&expired, None), &page).await;
    assert_eq!(closed.status(), StatusCode::GONE);
    let mut json_client = page_request(&forged, None);
    json_client.headers_mut().remove("accept");
    let refused = throughline_rating_page::handle(json_client, &page).await;
    let error: Value = serde_json::from_str(&body_text(&refused)).unwrap();
    assert_eq!(
        (refused.status(), error["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("link_not_recognized"))
    );
    o.write().await;
    assert_eq!(o.feedback(&customer).await.len(), 2);

    // Erased, she is gone from the page too: the link leads nowhere.
    let (status, erased) = o.client().erase(&customer, "privacy request PR-9").await;
    assert!(status == 200 || status == 202, "{erased}");
    o.write().await;
    let gone = throughline_rating_page::handle(page_request(&link, None), &page).await;
    assert_eq!(gone.status(), StatusCode::GONE, "{}", body_text(&gone));
}

/// The sample survey answers (`events/`), through their connectors, are what they say against a
/// survey that went where they come from: the SMS "5" and its remark, the WhatsApp button, the
/// Telegram stars and the widget's rating are answers; "5 minutes ago…" is an ordinary message.
#[test]
fn the_sample_survey_answers_answer_and_the_other_reply_does_not() {
    use throughline_edge::{Secret, WebhookRequest};
    use throughline_feedback::{OpenSurvey, recorded_answer};
    use throughline_testkit::secrets;

    let now = Utc::now();
    let request = |relative: &str| WebhookRequest::from_lambda(throughline_e2e::fresh_request(relative), None);
    let twilio = throughline_sms::TwilioConfig {
        auth_token: Secret::new(secrets::TEST_TWILIO_AUTH_TOKEN),
    };
    let meta = throughline_facebook::MetaConfig::from_secrets(&Secret::new(secrets::test_meta_secrets())).unwrap();
    let chat = throughline_chat::ChatConfig::from_secrets(
        &Secret::new(secrets::test_chat_secrets()),
        TimeDelta::seconds(throughline_chat::DEFAULT_TOLERANCE_SECONDS),
    )
    .unwrap();
    let only = |accepted: Result<throughline_edge::Accepted, throughline_edge::Rejection>| {
        let accepted = accepted.unwrap();
        assert_eq!(accepted.interactions.len(), 1, "{:?}", accepted.ignored);
        accepted.interactions.into_iter().next().unwrap()
    };
    let answers = [
        (
            "sms/10-survey-answer-rating.json",
            only(throughline_sms::accept(
                &request("sms/10-survey-answer-rating.json"),
                &twilio,
                now,
            )),
        ),
        (
            "sms/11-survey-answer-remark.json",
            only(throughline_sms::accept(
                &request("sms/11-survey-answer-remark.json"),
                &twilio,
                now,
            )),
        ),
        (
            "sms/12-survey-non-rating-reply.json",
            only(throughline_sms::accept(
                &request("sms/12-survey-non-rating-reply.json"),
                &twilio,
                now,
            )),
        ),
        (
            "facebook/21-whatsapp-survey-button.json",
            only(throughline_facebook::accept(
                &request("facebook/21-whatsapp-survey-button.json"),
                &meta,
                now,
            )),
        ),
        (
            "chat/16-telegram-survey-stars.json",
            only(throughline_chat::accept(
                &request("chat/16-telegram-survey-stars.json"),
                &chat,
                now,
            )),
        ),
        (
            "chat/15-widget-rating.json",
            only(throughline_chat::accept(
                &request("chat/15-widget-rating.json"),
                &chat,
                now,
            )),
        ),
    ];
    let mut got = Vec::new();
    for (event, interaction) in &answers {
        // A survey sent an hour before, where the message comes from; rated already before
        // the remark.
        let survey = OpenSurvey {
            id: interaction
                .feedback
                .as_ref()
                .map_or("sv_00aa".to_owned(), |f| f.survey_id.clone()),
            conversation_id: ConversationId::opened_by(&interaction.id),
            channel: interaction.channel,
            customer: interaction.customer.key(),
            endpoint: interaction.business_endpoint.key(),
            locale: None,
            sent_at: interaction.occurred_at - TimeDelta::hours(1),
            expires_at: interaction.occurred_at + TimeDelta::hours(23),
            resolved_at: interaction.occurred_at - TimeDelta::hours(1),
            resolved_channel: interaction.channel,
            assignee: None,
            reasons: Vec::new(),
            rating: event.contains("remark").then_some(5),
            remarked: false,
        };
        let feedback = recorded_answer(Some(&survey), interaction).and_then(|a| a.interaction.feedback);
        got.push((
            *event,
            feedback.as_ref().and_then(|f| f.rating),
            feedback.and_then(|f| f.remark),
        ));
    }
    assert_eq!(
        got,
        [
            ("sms/10-survey-answer-rating.json", Some(5), None),
            (
                "sms/11-survey-answer-remark.json",
                None,
                Some("Thanks, that was quick!".to_owned())
            ),
            ("sms/12-survey-non-rating-reply.json", None, None),
            ("facebook/21-whatsapp-survey-button.json", Some(4), None),
            ("chat/16-telegram-survey-stars.json", Some(4), None),
            (
                "chat/15-widget-rating.json",
                Some(5),
                Some("Quick and friendly".to_owned())
            ),
        ]
    );
    // The non-rating reply is not an answer at all: recorded as it came.
    let (_, reply) = &answers[2];
    assert_eq!(reply.kind, InteractionKind::Message);
}
