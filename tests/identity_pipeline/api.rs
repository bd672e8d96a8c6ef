//! The timeline API's contract: the OpenAPI document describes exactly the served routes, and
//! unsigned or incomplete requests are refused.

use super::*;

#[test]
fn the_openapi_document_describes_exactly_the_served_routes() {
    let documented = openapi::Spec::load().operations();
    let mut served: Vec<(String, String)> = throughline_timeline_api::ROUTES
        .iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .collect();
    served.sort();
    assert_eq!(documented, served);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_refuses_unsigned_calls_overlong_reasons_and_erasure_without_a_reason() {
    let stack = start_stack().await;
    let store = stack.store();
    let timeline_api = timeline_api(&stack);
    let customer = record(&store, &interaction(Channel::Sms, phone("+14155550177"), "SMr1", at(0))).await;
    let other = record(&store, &interaction(Channel::Sms, phone("+14155550178"), "SMr2", at(1))).await;

    // Without an IAM caller in the context: 401, nothing served.
    let mut event = api_event("GET", &format!("/customers/{customer}"), None);
    event["requestContext"].as_object_mut().unwrap().remove("authorizer");
    let response = throughline_timeline_api::handle(
        lambda_http::request::from_str(&event.to_string()).unwrap(),
        &timeline_api,
    )
    .await;
    assert_eq!(response.status(), 401);
    let error: Value = serde_json::from_slice(response.body().as_ref()).unwrap();
    assert_eq!(error["error"]["code"], "unauthenticated");

    // A reason over 1 KiB is the caller's mistake (400), not the store's (503); nothing merged.
    let (status, error) = ApiClient(&timeline_api)
        .merge(&customer, &other, Some(&"x".repeat(1025)))
        .await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (400, Some("invalid_body")),
        "{error}"
    );
    let (_, profile) = ApiClient(&timeline_api).profile(&other).await;
    assert_eq!(profile["customer_id"], other.to_string());

    // Erasure needs a reason, and the ledger names the caller's principal id.
    let (status, error) = ApiClient(&timeline_api)
        .raw("DELETE", &format!("/customers/{customer}"), None)
        .await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (400, Some("invalid_body")),
        "{error}"
    );
    let (status, merge) = ApiClient(&timeline_api)
        .merge(&customer, &other, Some(&"x".repeat(1024)))
        .await;
    assert_eq!(status, 200, "{merge}");
    assert_eq!(merge["actor"], AGENT_ARN);
    assert_eq!(merge["actor_principal_id"], "AIDAEXAMPLE");
}
