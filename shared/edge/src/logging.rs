//! The one logging setup of the functions: the level from `RUST_LOG` or `AWS_LAMBDA_LOG_LEVEL`,
//! JSON lines when `AWS_LAMBDA_LOG_FORMAT=JSON`, and the third-party targets that print personal
//! data held at `info` when the level is turned up.

use lambda_http::tracing::subscriber::{
    self,
    filter::{EnvFilter, LevelFilter},
};

/// Targets that, at `debug` and `trace`, print what passes through them: the Lambda runtime
/// each invocation's raw event (a webhook body, an SQS batch of interactions), the SDK and the
/// HTTP/TLS stack the requests and responses they carry. Those are personal data, so turning up
/// the functions' own logs leaves these at `info`.
pub const QUIET_TARGETS: &[&str] = &[
    "lambda_runtime",
    "lambda_runtime_api_client",
    "lambda_http",
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
    "aws_smithy_http_client",
    "hyper",
    "hyper_util",
    "h2",
    "rustls",
];

/// The filter directives for these environment values, as `tracing_subscriber`'s `EnvFilter`
/// reads them.
///
/// As with `lambda_runtime`'s default subscriber, `RUST_LOG`'s directives are used when it has
/// any, else `AWS_LAMBDA_LOG_LEVEL` (Lambda's `TRACE` … `FATAL`), else `info`. When the result
/// lets `debug` or `trace` through for every target, each of `QUIET_TARGETS` is capped at
/// `info`, unless the directives name it (or a prefix of it) themselves: an explicit
/// `RUST_LOG=hyper=debug` is a deliberate choice, a plain `debug` is not.
pub fn filter_directives(aws_lambda_log_level: Option<&str>, rust_log: Option<&str>) -> String {
    let from_rust_log: Vec<&str> = rust_log
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .collect();
    let mut directives: Vec<String> = if from_rust_log.is_empty() {
        vec![lambda_level(aws_lambda_log_level).to_string()]
    } else {
        from_rust_log.iter().map(|d| (*d).to_owned()).collect()
    };
    let global = directives
        .iter()
        .filter_map(|d| d.parse::<LevelFilter>().ok())
        .max()
        .unwrap_or(LevelFilter::OFF);
    if global > LevelFilter::INFO {
        let named: Vec<&str> = directives.iter().filter_map(|d| named_target(d)).collect();
        let capped = QUIET_TARGETS
            .iter()
            .filter(|target| !named.iter().any(|n| target.starts_with(n)))
            .map(|target| format!("{target}=info"));
        directives.extend(capped.collect::<Vec<_>>());
    }
    directives.join(",")
}

/// Lambda's application log level as a `tracing` level (`FATAL` is `error`); `info` when unset
/// or unknown.
fn lambda_level(value: Option<&str>) -> LevelFilter {
    match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        Some("fatal") => LevelFilter::ERROR,
        Some(level) => level.parse().unwrap_or(LevelFilter::INFO),
        None => LevelFilter::INFO,
    }
}

/// The target a directive names (`hyper=debug`, `hyper[span]=trace`, a bare `hyper`), or `None`
/// for a global level (`debug`) or a span-only directive (`[span]=debug`).
fn named_target(directive: &str) -> Option<&str> {
    if directive.parse::<LevelFilter>().is_ok() {
        return None;
    }
    let target = directive.split(['=', '[']).next().unwrap_or_default().trim();
    (!target.is_empty()).then_some(target)
}

/// Installs the subscriber for this process (stdout, no timestamps: Lambda adds them). Does
/// nothing when one is installed already, e.g. by a test.
pub fn init() {
    let env = |name| std::env::var(name).ok();
    let directives = filter_directives(env("AWS_LAMBDA_LOG_LEVEL").as_deref(), env("RUST_LOG").as_deref());
    let filter = EnvFilter::builder()
        .with_default_directive(LevelFilter::INFO.into())
        .parse_lossy(directives);
    let collector = subscriber::fmt()
        .with_target(false)
        .without_time()
        .with_env_filter(filter)
        .with_writer(std::io::stdout);
    let json = env("AWS_LAMBDA_LOG_FORMAT").is_some_and(|f| f.eq_ignore_ascii_case("json"));
    // `try_init`: a second initialisation must not panic a function.
    let _ = if json {
        collector.json().try_init()
    } else {
        collector.try_init()
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps() -> String {
        QUIET_TARGETS.iter().map(|t| format!(",{t}=info")).collect()
    }

    #[test]
    fn debug_and_trace_keep_the_third_party_targets_at_info() {
        assert_eq!(filter_directives(None, Some("debug")), format!("debug{}", caps()));
        assert_eq!(filter_directives(Some("TRACE"), None), format!("trace{}", caps()));
        assert_eq!(
            filter_directives(Some("INFO"), Some("trace")),
            format!("trace{}", caps())
        );
        let d = filter_directives(None, Some("debug"));
        for needed in [
            "hyper=info",
            "lambda_runtime=info",
            "aws_smithy_runtime=info",
            "h2=info",
            "rustls=info",
        ] {
            assert!(d.split(',').any(|x| x == needed), "{d}");
        }
        // The directives are what EnvFilter understands.
        assert!(EnvFilter::builder().parse(&d).is_ok());
    }

    #[test]
    fn quieter_levels_are_left_alone() {
        assert_eq!(filter_directives(None, None), "info");
        assert_eq!(filter_directives(Some("WARN"), None), "warn");
        assert_eq!(filter_directives(Some("FATAL"), None), "error");
        assert_eq!(filter_directives(Some("nonsense"), Some(" ")), "info");
        assert_eq!(
            filter_directives(None, Some("info,throughline_sms=debug")),
            "info,throughline_sms=debug"
        );
    }

    #[test]
    fn a_target_named_on_purpose_keeps_its_level() {
        let d = filter_directives(None, Some("debug,hyper=trace,aws_smithy_runtime"));
        assert!(d.starts_with("debug,hyper=trace,aws_smithy_runtime,"), "{d}");
        for kept in [
            "hyper=info",
            "hyper_util=info",
            "aws_smithy_runtime=info",
            "aws_smithy_runtime_api=info",
        ] {
            assert!(!d.split(',').any(|x| x == kept), "{d}");
        }
        assert!(d.split(',').any(|x| x == "h2=info"), "{d}");
        assert!(d.split(',').any(|x| x == "lambda_runtime=info"), "{d}");
    }
}
