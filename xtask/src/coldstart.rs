//! `cargo xtask coldstart`: how long a function takes from process start to its first answered
//! event, and its peak resident memory, against a minimal local Lambda Runtime API. Compared
//! with a bare `lambda_runtime` echo function built the same way.
//!
//! The Runtime API here serves exactly one event and records the moment the function posts the
//! response; peak RSS is the kernel's `VmHWM` for the process at that moment.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use crate::{Result, workspace_root};

#[derive(Debug, Clone, Copy)]
pub struct Measurement {
    pub first_response: Duration,
    pub peak_rss_kib: u64,
}

/// Runs `binary` once with `env`, serves it `event`, and measures.
pub async fn measure(binary: &Path, env: &[(String, String)], event: &serde_json::Value) -> Result<Measurement> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let api = listener.local_addr()?.to_string();
    let started = Instant::now();
    let mut child = Command::new(binary)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("AWS_LAMBDA_RUNTIME_API", &api)
        .env("AWS_LAMBDA_FUNCTION_NAME", "coldstart")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "local")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "local")
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let pid = child.id();
    let body = event.to_string();
    let mut served = false;
    let result = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let (stream, _) = listener.accept().await?;
            let mut reader = BufReader::new(stream);
            loop {
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).await? == 0 {
                    break;
                }
                let mut content_length = 0usize;
                loop {
                    let mut header = String::new();
                    reader.read_line(&mut header).await?;
                    if header.trim().is_empty() {
                        break;
                    }
                    if let Some((name, value)) = header.split_once(':')
                        && name.eq_ignore_ascii_case("content-length")
                    {
                        content_length = value.trim().parse().unwrap_or(0);
                    }
                }
                let mut request_body = vec![0; content_length];
                reader.read_exact(&mut request_body).await?;
                let path = request_line.split_whitespace().nth(1).unwrap_or_default().to_owned();
                if path.ends_with("/invocation/next") && !served {
                    served = true;
                    let deadline = chrono::Utc::now().timestamp_millis() + 30_000;
                    let response = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nLambda-Runtime-Aws-Request-Id: coldstart-1\r\n\
                         Lambda-Runtime-Deadline-Ms: {deadline}\r\n\
                         Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:coldstart\r\n\
                         Content-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    reader.get_mut().write_all(response.as_bytes()).await?;
                } else if path.ends_with("/response") {
                    let first_response = started.elapsed();
                    let peak_rss_kib = peak_rss_kib(pid);
                    return Ok::<Measurement, Box<dyn std::error::Error + Send + Sync>>(Measurement {
                        first_response,
                        peak_rss_kib,
                    });
                } else if path.contains("/error") {
                    let text = String::from_utf8_lossy(&request_body).into_owned();
                    return Err(format!("the function reported an error: {text}").into());
                }
            }
        }
    })
    .await;
    let _ = child.kill();
    let _ = child.wait();
    result.map_err(|_| "no response within 30 s")?
}

fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Builds the release binaries for this machine (unless `bin_dir` names a folder of already
/// built ones) and prints the medians of `runs` cold starts: of every function, or of those
/// `only` names, next to the echo baseline.
pub async fn run(runs: usize, bin_dir: Option<std::path::PathBuf>, only: &[String]) -> Result<()> {
    let all = [
        "throughline-echo",
        "throughline-sms",
        "throughline-timeline-writer",
        "throughline-timeline-api",
        "throughline-sender",
        "throughline-rating-page",
    ];
    if let Some(unknown) = only.iter().find(|b| !all.contains(&b.as_str())) {
        return Err(format!("--only {unknown}: not one of {}", all.join(", ")).into());
    }
    let measured = |bin: &str| bin == "throughline-echo" || only.is_empty() || only.iter().any(|b| b == bin);
    let bins: Vec<&str> = all.into_iter().filter(|b| measured(b)).collect();
    let bin_dir = match bin_dir {
        Some(dir) => dir,
        None => {
            let mut build = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
            build.args(["build", "--release"]).current_dir(workspace_root());
            for bin in &bins {
                build.args(["--bin", bin]);
            }
            crate::venv::run(&mut build, "build the release binaries")?;
            workspace_root().join("target/release")
        }
    };

    // No network is touched: dummy credentials and region, an unreachable endpoint, and events
    // that are answered without AWS calls (a status callback; a poison SQS message, for the
    // writer and for the sender; a timeline request with a bad cursor).
    let common = vec![
        ("AWS_REGION".to_owned(), "us-east-1".to_owned()),
        ("AWS_ACCESS_KEY_ID".to_owned(), "testing".to_owned()),
        ("AWS_SECRET_ACCESS_KEY".to_owned(), "testing".to_owned()),
        ("AWS_ENDPOINT_URL".to_owned(), "http://127.0.0.1:9".to_owned()),
        (
            "INTERACTIONS_QUEUE_URL".to_owned(),
            "http://127.0.0.1:9/000000000000/q".to_owned(),
        ),
        (
            "TWILIO_AUTH_TOKEN".to_owned(),
            throughline_testkit::secrets::TEST_TWILIO_AUTH_TOKEN.to_owned(),
        ),
        (
            "TWILIO_PUBLIC_URL".to_owned(),
            throughline_testkit::events::SAMPLE_PUBLIC_URL.to_owned(),
        ),
        ("TIMELINE_TABLE_NAME".to_owned(), "TimelineTable".to_owned()),
        (
            "FEEDBACK_KEY".to_owned(),
            throughline_testkit::secrets::TEST_FEEDBACK_KEY.to_owned(),
        ),
        (
            "SUPPRESSION_KEY".to_owned(),
            throughline_testkit::secrets::TEST_SUPPRESSION_KEY.to_owned(),
        ),
        (
            "OUTBOUND_QUEUE_URL".to_owned(),
            "http://127.0.0.1:9/000000000000/outbound".to_owned(),
        ),
        (
            "SEND_CREDENTIALS".to_owned(),
            throughline_testkit::secrets::test_send_credentials("http://127.0.0.1:9"),
        ),
    ];
    let read = |p: &str| -> Result<serde_json::Value> {
        Ok(serde_json::from_str(&std::fs::read_to_string(
            workspace_root().join(p),
        )?)?)
    };
    let mut poison = read("events/timeline-writer/sqs-batch.json")?;
    let mut poison_job = poison.clone();
    poison_job["Records"] = serde_json::Value::Array(vec![poison["Records"][1].clone()]);
    poison_job["Records"][0]["eventSourceARN"] = "arn:aws:sqs:us-east-1:000000000000:OutboundQueue".into();
    poison["Records"] = serde_json::Value::Array(vec![poison["Records"][1].clone()]);
    let cases = [
        ("throughline-echo", serde_json::json!({ "hello": "world" })),
        ("throughline-sms", read("events/sms/05-status-callback.json")?),
        ("throughline-timeline-writer", poison),
        // Refused before any store call: a cursor that is not one.
        (
            "throughline-timeline-api",
            read("events/timeline-api/03-bad-cursor.json")?,
        ),
        // A message that is no send job: reported failed (for the dead-letter queue), no call.
        ("throughline-sender", poison_job),
        // A link with a signature that is not ours: refused before any read.
        (
            "throughline-rating-page",
            read("events/rating-page/01-forged-link.json")?,
        ),
    ];
    println!(
        "{:<30} {:>22} {:>16} {:>14}",
        "binary (release, this host)", "first response (median)", "peak RSS (KiB)", "size (bytes)"
    );
    for (bin, event) in cases.into_iter().filter(|(bin, _)| measured(bin)) {
        let path = bin_dir.join(bin);
        if !path.exists() {
            return Err(format!(
                "{bin} is not in {}: build it (cargo build --release --bin {bin}), or leave out --bin-dir",
                bin_dir.display()
            )
            .into());
        }
        let mut times = Vec::new();
        let mut rss = Vec::new();
        for _ in 0..runs {
            let m = measure(&path, &common, &event).await?;
            times.push(m.first_response);
            rss.push(m.peak_rss_kib);
        }
        times.sort();
        rss.sort();
        let size = std::fs::metadata(&path)?.len();
        println!(
            "{bin:<30} {:>20.1}ms {:>16} {:>14}",
            times[runs / 2].as_secs_f64() * 1000.0,
            rss[runs / 2],
            size
        );
    }
    Ok(())
}
