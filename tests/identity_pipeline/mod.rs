//! One customer across channels, against the moto emulator: verified evidence links, claims
//! suggest, merges and unmerges are exact, conversations span channels, the timeline API pages
//! stably, and data-subject requests export everything and erase for good. Every API answer is
//! checked against `functions/timeline-api/openapi.yaml` (see `support::ApiClient`).

use std::collections::BTreeSet;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use lambda_http::http::StatusCode;
use serde_json::{Value, json};
use throughline_e2e::*;
use throughline_model::CustomerId;
use throughline_model::{Channel, Evidence, EvidenceSource, Identity, Interaction, Platform};
use throughline_store::{Recorded, TimelineStore};

mod api;
mod conversations;
mod evidence;
mod merges;
mod privacy;

fn at(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 9, 0, 0).unwrap() + TimeDelta::minutes(minutes)
}

fn chat_user(id: &str) -> throughline_model::Handle {
    platform_user(Platform::WebChatUser, Some(secrets::TEST_CHAT_SITE), id)
}

async fn record(store: &TimelineStore, interaction: &Interaction) -> CustomerId {
    match store.record(interaction).await.unwrap() {
        Recorded::New { customer, .. } | Recorded::Duplicate { customer } => customer,
        Recorded::Erased => panic!("unexpectedly erased"),
        Recorded::Collision { .. } => panic!("unexpectedly a dedupe collision"),
    }
}

/// The ids of a customer's whole timeline through the API, newest first, following cursors.
async fn timeline_ids(api_: &throughline_timeline_api::TimelineApi, customer: &str, query: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let mut query = query.to_owned();
        if let Some(c) = &cursor {
            query.push_str(&format!("&cursor={c}"));
        }
        let (status, page) = ApiClient(api_).timeline(customer, &query).await;
        assert_eq!(status, 200, "{page}");
        ids.extend(
            page["entries"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["id"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return ids,
        }
    }
    panic!("timeline did not end");
}

fn identifiers(profile: &Value) -> BTreeSet<(String, String, bool)> {
    profile["identifiers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["identifier"].as_str().unwrap().to_owned(),
                i["evidence"].as_str().unwrap().to_owned(),
                i["owned"].as_bool().unwrap(),
            )
        })
        .collect()
}

/// A customer's own timeline (not its group's), entry by entry.
async fn own_timeline(store: &TimelineStore, customer: &CustomerId) -> Vec<throughline_store::TimelineEntry> {
    store
        .timeline(customer, 100, None, &Default::default())
        .await
        .unwrap()
        .entries
}
