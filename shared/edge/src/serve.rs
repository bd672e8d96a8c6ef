//! A function's `main`, the same for every connector: logging, the AWS configuration, the
//! function built once per cold start (its `from_env`), then every invocation through its
//! handler, so that each entry point is one line. Macros rather than generic functions: the
//! runtime needs the handler's futures to be `Send`, which a generic async handler cannot
//! promise on stable Rust.

/// Logging, then the AWS configuration from the environment (what every `main` starts with).
pub async fn start() -> aws_config::SdkConfig {
    crate::init_logging();
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// `serve_http!(Function::from_env, handle)`: serves an HTTP function (Function URL, API
/// Gateway), `handle(request, &function)` answering every request. Evaluates to the runtime's
/// `Result<(), lambda_http::Error>`.
#[macro_export]
macro_rules! serve_http {
    ($build:expr, $handle:expr) => {{
        let aws = $crate::serve::start().await;
        let function = $build(&aws).await?;
        $crate::lambda_http::run($crate::lambda_http::service_fn(|request| {
            let function = &function;
            async move { Ok::<_, $crate::lambda_http::Error>($handle(request, function).await) }
        }))
        .await
    }};
}

/// `serve_event!(Function::from_env, handle)`: serves an event function (SNS, SES, SQS),
/// `handle(payload, &function)`; its error fails the invocation, so Lambda retries it.
#[macro_export]
macro_rules! serve_event {
    ($build:expr, $handle:expr) => {{
        let aws = $crate::serve::start().await;
        let function = $build(&aws).await?;
        $crate::lambda_http::lambda_runtime::run($crate::lambda_http::service_fn(
            |event: $crate::lambda_http::lambda_runtime::LambdaEvent<_>| {
                let function = &function;
                async move {
                    $handle(event.payload, function)
                        .await
                        .map_err($crate::lambda_http::Error::from)
                }
            },
        ))
        .await
    }};
}
