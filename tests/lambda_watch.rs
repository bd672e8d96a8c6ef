//! The real Lambda binaries under `cargo lambda watch` (cargo-lambda's Runtime API emulator):
//! invoked with a file from events/ through `cargo lambda invoke`, and over the Function URL.
//! The SMS and chat functions read their secrets from the emulator's SSM Parameter Store, as
//! deployed.

use std::process::Command;

use throughline_e2e::stack::{CHAT_BINARY, SMS_BINARY, TIMELINE_API_BINARY, WRITER_BINARY};
use throughline_e2e::*;
use throughline_localstack::lambda::{HttpCall, LambdaEmulator};
use throughline_localstack::venv::Venv;
use throughline_testkit::events::SAMPLE_PUBLIC_URL;

#[tokio::test(flavor = "multi_thread")]
async fn built_binaries_serve_sample_events_under_cargo_lambda_watch() {
    let venv = Venv::require().unwrap_or_else(|e| panic!("{e}"));
    let stack = start_stack().await;
    stack.put_sample_secrets().await.unwrap();
    let mut env = stack
        .functions_env(&[SMS_BINARY, CHAT_BINARY, WRITER_BINARY, TIMELINE_API_BINARY])
        .unwrap();
    assert!(
        env.iter().any(|(k, _)| k == "TWILIO_AUTH_TOKEN_PARAMETER"),
        "the template passes a parameter name"
    );
    env.push(("TWILIO_PUBLIC_URL".into(), SAMPLE_PUBLIC_URL.into()));
    let lambda = LambdaEmulator::start(&venv, &env, true, 1)
        .await
        .unwrap_or_else(|e| panic!("cargo lambda watch could not start: {e}"));

    // `cargo lambda invoke --data-file events/...`, as the README shows.
    let output = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args([
            "lambda",
            "invoke",
            SMS_BINARY,
            "--invoke-address",
            "127.0.0.1",
            "--invoke-port",
        ])
        .arg(lambda.port().to_string())
        .arg("--data-file")
        .arg(event_path("sms/01-inbound-sms.json"))
        .env("PATH", venv.path_env())
        .current_dir(throughline_localstack::workspace_root())
        .output()
        .expect("cargo lambda invoke runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "cargo lambda invoke failed: {stdout}{}\n(function log: {})",
        String::from_utf8_lossy(&output.stderr),
        lambda.log().display()
    );
    let response: serde_json::Value = serde_json::from_str(&stdout).expect("invoke prints the response");
    assert_eq!(response["statusCode"], 200, "{response}");
    assert!(
        response["body"].as_str().unwrap_or_default().contains("<Response/>"),
        "{response}"
    );

    // Over the Function URL: a valid WhatsApp webhook, then a forged one.
    let call = |file: &str| {
        let event: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(event_path(file)).unwrap()).unwrap();
        HttpCall::from_event(&event).unwrap()
    };
    let (status, _, _) = lambda
        .call_url(SMS_BINARY, &call("sms/03-whatsapp-inbound.json"))
        .await
        .unwrap();
    assert_eq!(status, 200);
    let (status, content_type, body) = lambda
        .call_url(SMS_BINARY, &call("sms/06-bad-signature.json"))
        .await
        .unwrap();
    assert_eq!((status, content_type.as_str()), (403, "application/json"), "{body}");
    assert_eq!(depth(&stack, &stack.interactions_queue().url).await, 2);

    // The chat function routes by path below its Function URL.
    let fresh = |file: &str| {
        HttpCall::from_event(&throughline_localstack::sign::fresh_event(&event_path(file)).unwrap()).unwrap()
    };
    for (file, expected) in [
        ("chat/01-widget-message.json", 200),
        ("chat/08-telegram-text.json", 200),
        ("chat/06-widget-bad-signature.json", 401),
    ] {
        let (status, _, body) = lambda.call_url(CHAT_BINARY, &fresh(file)).await.unwrap();
        assert_eq!(status, expected, "{file}: {body}");
    }
    let mut nowhere = fresh("chat/01-widget-message.json");
    nowhere.path = "nowhere".into();
    let (status, _, _) = lambda.call_url(CHAT_BINARY, &nowhere).await.unwrap();
    assert_eq!(status, 404);
    assert_eq!(depth(&stack, &stack.interactions_queue().url).await, 4);

    // The writer binary, fed by the event source mapping through the emulator's Invoke API.
    let mapping = stack.writer_mapping(Some(1));
    for _ in 0..10 {
        if mapping.backlog().await.unwrap() == 0 {
            break;
        }
        mapping.poll_once(1, |event| lambda.invoke_writer(event)).await.unwrap();
    }
    let store = stack.store();
    let ada = phone("+14155550100");
    let customer = store
        .customer_for(&ada, true)
        .await
        .unwrap()
        .expect("customer recorded by the writer binary");
    assert_eq!(
        store
            .timeline(&customer, 10, None, &Default::default())
            .await
            .unwrap()
            .entries
            .len(),
        2
    );

    // The timeline API binary over its Function URL: the customer by identifier, checked
    // against the OpenAPI document, and a bad cursor refused with its code.
    let get = |path: &str, query: &str| HttpCall {
        method: "GET".into(),
        path: path.into(),
        query: query.into(),
        headers: vec![],
        body: vec![],
    };
    let (status, content_type, body) = lambda
        .call_url(
            TIMELINE_API_BINARY,
            &get("customers", "identifier=phone%3A%2B14155550100"),
        )
        .await
        .unwrap();
    assert_eq!((status, content_type.as_str()), (200, "application/json"), "{body}");
    let profile: serde_json::Value = serde_json::from_str(&body).unwrap();
    openapi::Spec::load()
        .check_response("GET", "/customers", status, &profile)
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(profile["customer_id"], customer.to_string());
    assert_eq!(profile["counts"]["whatsapp"], 1);
    let (status, _, body) = lambda
        .call_url(
            TIMELINE_API_BINARY,
            &get(&format!("customers/{customer}/timeline"), "cursor=%21%21"),
        )
        .await
        .unwrap();
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("bad_cursor"), "{body}");
}
