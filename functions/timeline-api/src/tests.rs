//! Unit tests of the pure parts: routes, queries, callers, errors, the OpenAPI document.

use lambda_http::http::Method;
use throughline_edge::ErrorCode;
use throughline_model::{Channel, CustomerId, Direction, MergeId};
use throughline_store::StoreError;

use super::*;

const ADA: &str = "cus_01jb2k8z7m3q4r5s6t7v8w9x0y";

#[test]
fn routes_parse_their_parameters_and_refuse_the_rest() {
    assert_eq!(route(&Method::GET, "/customers"), Ok(Route::FindCustomer));
    let ada = CustomerId::parse(ADA).unwrap();
    assert_eq!(
        route(&Method::GET, &format!("/customers/{ADA}/")),
        Ok(Route::Profile(ada.clone()))
    );
    assert_eq!(
        route(&Method::DELETE, &format!("/customers/{ADA}")),
        Ok(Route::Erase(ada.clone()))
    );
    let merge = MergeId::parse(&format!("mg_{}", "0".repeat(26))).unwrap();
    assert_eq!(
        route(&Method::POST, &format!("/merges/{merge}/unmerge")),
        Ok(Route::Unmerge(merge))
    );
    assert!(matches!(
        route(&Method::POST, "/merges/mg_1/unmerge"),
        Err(ApiError::BadRequest {
            code: "invalid_merge_id",
            ..
        })
    ));
    assert!(matches!(
        route(&Method::POST, &format!("/customers/{ADA}/suggestions/sg_x/accept")),
        Err(ApiError::BadRequest {
            code: "invalid_suggestion_id",
            ..
        })
    ));
    assert_eq!(
        route(&Method::POST, &format!("/customers/{ADA}/timeline")),
        Err(ApiError::MethodNotAllowed("GET".into()))
    );
    assert_eq!(route(&Method::GET, "/nothing/here"), Err(ApiError::NotFound));
    assert!(matches!(
        route(&Method::GET, "/customers/ada"),
        Err(ApiError::BadRequest {
            code: "invalid_customer_id",
            ..
        })
    ));
    assert!(matches!(
        route(&Method::POST, &format!("/customers/{ADA}/conversations/cv_x/split")),
        Err(ApiError::BadRequest {
            code: "invalid_conversation_id",
            ..
        })
    ));
}

/// One of every store error. The match has no wildcard: a new variant does not compile
/// until it is added here, and so to the comparison with openapi.yaml below.
fn every_store_error() -> Vec<StoreError> {
    let all = vec![
        StoreError::Dynamo {
            operation: "GetItem",
            message: "m".into(),
        },
        StoreError::ObjectStore {
            operation: "DeleteObject",
            message: "m".into(),
        },
        StoreError::Unconfigured("x"),
        StoreError::Corrupt("x".into()),
        StoreError::BadCursor,
        StoreError::CustomerNotFound("x".into()),
        StoreError::CustomerErased("x".into()),
        StoreError::NotFound("x".into()),
        StoreError::AlreadyMerged,
        StoreError::NotMerged(throughline_model::MergeId::generate()),
        StoreError::GroupTooLarge { items: 101, limit: 100 },
        StoreError::SuggestionDecided("x".into()),
        StoreError::NothingToSplit,
        StoreError::NothingToJoin,
        StoreError::NotRetryable("sent"),
        StoreError::AlreadyResolved("x".into()),
        StoreError::NotResolved("x".into()),
        StoreError::ReasonRequired,
        StoreError::Contention("x"),
    ];
    for error in &all {
        match error {
            StoreError::Dynamo { .. }
            | StoreError::ObjectStore { .. }
            | StoreError::Unconfigured(_)
            | StoreError::Corrupt(_)
            | StoreError::BadCursor
            | StoreError::CustomerNotFound(_)
            | StoreError::CustomerErased(_)
            | StoreError::NotFound(_)
            | StoreError::AlreadyMerged
            | StoreError::NotMerged(_)
            | StoreError::GroupTooLarge { .. }
            | StoreError::SuggestionDecided(_)
            | StoreError::NothingToSplit
            | StoreError::NothingToJoin
            | StoreError::NotRetryable(_)
            | StoreError::AlreadyResolved(_)
            | StoreError::NotResolved(_)
            | StoreError::ReasonRequired
            | StoreError::Contention(_) => {}
        }
    }
    all
}

/// One of every refusal of the channel rules (no wildcard, as above).
fn every_refusal() -> Vec<throughline_model::SendRefusal> {
    use throughline_model::{Channel, SendRefusal};
    let all = vec![
        SendRefusal::WindowClosed {
            channel: Channel::Whatsapp,
            closed_at: chrono::DateTime::UNIX_EPOCH,
            remedy: "r",
        },
        SendRefusal::RecipientOptedOut,
        SendRefusal::RecipientUndeliverable,
        SendRefusal::ChannelNotConfigured(Channel::Sms),
        SendRefusal::UnsupportedContent("x"),
        SendRefusal::TextTooLong {
            channel: Channel::Sms,
            limit: 1,
            length: 2,
        },
    ];
    for refusal in &all {
        match refusal {
            SendRefusal::WindowClosed { .. }
            | SendRefusal::RecipientOptedOut
            | SendRefusal::RecipientUndeliverable
            | SendRefusal::ChannelNotConfigured(_)
            | SendRefusal::UnsupportedContent(_)
            | SendRefusal::TextTooLong { .. } => {}
        }
    }
    all
}

#[test]
fn the_error_codes_are_exactly_the_ones_openapi_documents() {
    let spec: serde_yaml_ng::Value = serde_yaml_ng::from_str(include_str!("../openapi.yaml")).unwrap();
    let documented: std::collections::BTreeSet<String> = spec["components"]["schemas"]["Error"]["properties"]["error"]
        ["properties"]["code"]["enum"]
        .as_sequence()
        .expect("Error.error.code has an enum")
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    let mut answered: Vec<ApiError> = vec![
        ApiError::Unauthenticated,
        ApiError::NotFound,
        ApiError::MethodNotAllowed("GET".into()),
    ];
    answered.extend(BAD_REQUEST_CODES.iter().map(|code| ApiError::bad(code, "m")));
    answered.extend(every_store_error().into_iter().map(ApiError::from));
    answered.extend(every_refusal().into_iter().map(ApiError::from));
    answered.extend([
        ApiError::NoRoute("m".into()),
        ApiError::IdempotencyKeyReused,
        ApiError::QueueUnavailable,
    ]);
    let codes: std::collections::BTreeSet<String> = answered.iter().map(|e| e.code().to_owned()).collect();
    assert_eq!(codes, documented);
    // And each is answered as the one mapping says.
    for error in &answered {
        let response = error.clone().into_response();
        let body: Value = serde_json::from_slice(response.body().as_ref()).unwrap();
        assert_eq!(response.status(), error.status());
        assert_eq!(body["error"]["code"], error.code());
    }
}

#[test]
fn the_string_enums_openapi_lists_are_exactly_the_models() {
    use throughline_model::{Evidence, EvidenceSource, IdentifierSource, Provider, SenderCheck};
    use throughline_store::{LedgerAction, SuggestionStatus};
    let spec: serde_yaml_ng::Value = serde_yaml_ng::from_str(include_str!("../openapi.yaml")).unwrap();
    let documented = |name: &str| -> Vec<String> {
        spec["components"]["schemas"][name]["enum"]
            .as_sequence()
            .unwrap_or_else(|| panic!("{name} has an enum"))
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    };
    let names = |all: &[&str]| all.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(documented("Channel"), names(&Channel::ALL.map(Channel::as_str)));
    assert_eq!(documented("Provider"), names(&Provider::ALL.map(Provider::as_str)));
    assert_eq!(documented("Direction"), names(&Direction::ALL.map(Direction::as_str)));
    assert_eq!(documented("Evidence"), names(&Evidence::ALL.map(Evidence::as_str)));
    assert_eq!(
        documented("EvidenceSource"),
        names(&EvidenceSource::ALL.map(EvidenceSource::as_str))
    );
    assert_eq!(
        documented("SenderCheck"),
        names(&SenderCheck::ALL.map(SenderCheck::as_str))
    );
    let sources: Vec<&str> = Provider::ALL
        .map(|p| IdentifierSource::Provider(p).as_str())
        .into_iter()
        .chain(EvidenceSource::ALL.map(|e| IdentifierSource::Evidence(e).as_str()))
        .collect();
    assert_eq!(documented("IdentifierSource"), names(&sources));
    assert_eq!(
        documented("SuggestionStatus"),
        names(&SuggestionStatus::ALL.map(SuggestionStatus::as_str))
    );
    assert_eq!(
        documented("LedgerAction"),
        names(&LedgerAction::ALL.map(LedgerAction::as_str))
    );
    assert_eq!(
        documented("DeliveryStatus"),
        names(&throughline_model::DeliveryStatus::ALL.map(throughline_model::DeliveryStatus::as_str))
    );
    assert_eq!(
        documented("RoutingReason"),
        names(&crate::RoutingReason::ALL.map(crate::RoutingReason::as_str))
    );
}

#[test]
fn every_listed_route_is_served() {
    for (method, template, _) in ROUTES {
        let path = template
            .replace("{customer_id}", ADA)
            .replace("{suggestion_id}", &format!("sg_{}", "a".repeat(32)))
            .replace("{merge_id}", &format!("mg_{}", "0".repeat(26)))
            .replace("{conversation_id}", &format!("cv_{}", "a".repeat(32)))
            .replace("{interaction_id}", &format!("ix_{}", "a".repeat(32)))
            .replace("{segment}", "high_value");
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        assert!(route(&method, &path).is_ok(), "{method} {path}");
    }
}

#[test]
fn timeline_queries_parse_filters_and_refuse_bad_values() {
    let q = timeline_query(Some(
        "limit=20&channel=whatsapp&direction=inbound&from=2026-11-24T00%3A00%3A00Z&cursor=abc",
    ))
    .unwrap();
    assert_eq!(q.limit, 20);
    assert_eq!(q.filter.channel, Some(Channel::Whatsapp));
    assert_eq!(q.filter.direction, Some(Direction::Inbound));
    assert_eq!(q.filter.from.unwrap().to_rfc3339(), "2026-11-24T00:00:00+00:00");
    assert_eq!(q.cursor.as_deref(), Some("abc"));
    assert_eq!(timeline_query(None).unwrap().limit, DEFAULT_PAGE_SIZE);
    for bad in [
        "limit=0",
        "limit=101",
        "limit=x",
        "channel=fax",
        "direction=up",
        "from=yesterday",
        "conversation=cv_1",
    ] {
        assert!(timeline_query(Some(bad)).is_err(), "{bad}");
    }
}

#[test]
fn the_sample_events_route_and_name_their_iam_caller() {
    let dir = throughline_testkit::events::event_path("timeline-api");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let request = lambda_http::request::from_str(&text).unwrap();
        assert!(
            route(request.method(), request.uri().path()).is_ok(),
            "{}",
            request.uri()
        );
        assert_eq!(
            caller(&request),
            Some(Caller {
                arn: "arn:aws:sts::123456789012:assumed-role/ThroughlineAgents/grace".into(),
                principal_id: Some("AROAEXAMPLE:grace".into()),
            })
        );
        seen += 1;
    }
    assert_eq!(seen, 4);
    let unsigned = lambda_http::http::Request::builder()
        .uri("https://x/customers")
        .body(Body::Empty)
        .unwrap();
    assert_eq!(
        caller(&unsigned),
        None,
        "no IAM caller: refused unless the stack is local"
    );
}

#[test]
fn percent_decoding() {
    let pairs = query_pairs(Some("a=phone%3A%2B14155550100&b=a+b&c=100%&d=%zz"));
    let decoded: Vec<&str> = pairs.iter().map(|(_, v)| v.as_str()).collect();
    assert_eq!(decoded, ["phone:+14155550100", "a b", "100%", "%zz"]);
}

#[test]
fn store_errors_map_to_stable_codes() {
    let status_and_code = |e: StoreError| {
        let r = ApiError::from(e).into_response();
        let v: Value = serde_json::from_slice(r.body().as_ref()).unwrap();
        (r.status().as_u16(), v["error"]["code"].as_str().unwrap().to_owned())
    };
    assert_eq!(status_and_code(StoreError::BadCursor), (400, "bad_cursor".into()));
    assert_eq!(
        status_and_code(StoreError::CustomerNotFound("x".into())),
        (404, "customer_not_found".into())
    );
    assert_eq!(
        status_and_code(StoreError::CustomerErased("x".into())),
        (404, "customer_erased".into())
    );
    assert_eq!(
        status_and_code(StoreError::AlreadyMerged),
        (409, "already_merged".into())
    );
    assert_eq!(
        status_and_code(StoreError::Contention("x")),
        (503, "store_unavailable".into())
    );
    assert_eq!(
        status_and_code(StoreError::ObjectStore {
            operation: "DeleteObject",
            message: "m".into()
        }),
        (503, "store_unavailable".into())
    );
    assert_eq!(status_and_code(StoreError::Unconfigured("x")), (500, "internal".into()));
}
