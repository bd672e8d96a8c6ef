//! `cargo lambda watch`: the Lambda Runtime API emulator from cargo-lambda. It builds and runs
//! the real function binaries, serves their Function URLs on `/lambda-url/<binary>/` and the
//! Invoke API on `/2015-03-31/functions/<binary>/invocations`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::emulator::free_port;
use crate::venv::Venv;
use crate::{Result, workspace_root};

pub struct LambdaEmulator {
    child: Child,
    port: u16,
    http: reqwest::Client,
    log: PathBuf,
}

/// The first request to a function compiles it: allow for a cold build.
const INVOKE_TIMEOUT: Duration = Duration::from_secs(600);

impl LambdaEmulator {
    /// Starts `cargo lambda watch` on a free loopback port with `env` for every function, and
    /// up to `instances` instances of each at once (as Lambda runs one per concurrent
    /// invocation; cargo-lambda's default is one, which queues every invocation behind it).
    /// `quiet` sends its output to a log file instead of the terminal.
    pub async fn start(venv: &Venv, env: &[(String, String)], quiet: bool, instances: usize) -> Result<Self> {
        let port = free_port()?;
        let dir = std::env::temp_dir().join(format!("throughline-lambda-{port}"));
        std::fs::create_dir_all(&dir)?;
        let env_file = dir.join("env");
        let lines: Vec<String> = env.iter().map(|(k, v)| env_line(k, v)).collect::<Result<_>>()?;
        std::fs::write(&env_file, lines.join("\n") + "\n")?;
        let log = dir.join("watch.log");

        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut command = Command::new(cargo);
        command
            .args([
                "lambda",
                "watch",
                "--ignore-changes",
                "--invoke-address",
                "127.0.0.1",
                "--invoke-port",
            ])
            .arg(port.to_string())
            .arg("--concurrency")
            .arg(instances.max(1).to_string())
            .arg("--env-file")
            .arg(&env_file)
            .current_dir(workspace_root())
            .env("PATH", venv.path_env())
            .stdin(Stdio::null());
        if quiet {
            command.stdout(Stdio::from(std::fs::File::create(&log)?));
            command.stderr(Stdio::from(std::fs::File::create(&log)?));
        }
        // Its own process group, so stopping it also stops the function processes it started.
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = command.spawn().map_err(|e| {
            format!(
                "could not start `cargo lambda watch` (cargo-lambda from {}): {e}",
                venv.root().display()
            )
        })?;
        let mut emulator = Self {
            child,
            port,
            http: reqwest::Client::new(),
            log,
        };

        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(status) = emulator.child.try_wait()? {
                return Err(format!("`cargo lambda watch` exited ({status}); see {}", emulator.log.display()).into());
            }
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(emulator);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "`cargo lambda watch` did not listen within 120 s; see {}",
                    emulator.log.display()
                )
                .into());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn log(&self) -> &PathBuf {
        &self.log
    }

    /// The local Function URL of a binary.
    pub fn function_url(&self, binary: &str) -> String {
        format!("http://127.0.0.1:{}/lambda-url/{binary}/", self.port)
    }

    /// Invokes the timeline writer with an SQS batch, as the event source mapping does.
    pub async fn invoke_writer(
        &self,
        event: aws_lambda_events::event::sqs::SqsEvent,
    ) -> Result<aws_lambda_events::event::sqs::SqsBatchResponse> {
        let response = self
            .invoke(crate::stack::WRITER_BINARY, &serde_json::to_value(event)?)
            .await?;
        Ok(serde_json::from_value(response)?)
    }

    /// Invokes a function synchronously with a JSON event, as the Lambda Invoke API does.
    pub async fn invoke(&self, binary: &str, event: &serde_json::Value) -> Result<serde_json::Value> {
        let url = format!(
            "http://127.0.0.1:{}/2015-03-31/functions/{binary}/invocations",
            self.port
        );
        let response = self.http.post(url).json(event).timeout(INVOKE_TIMEOUT).send().await?;
        let function_error = response.headers().get("x-amz-function-error").is_some();
        let status = response.status();
        let body = response.text().await?;
        if !status.is_success() || function_error {
            return Err(format!("invoking {binary} failed ({status}): {body}").into());
        }
        Ok(serde_json::from_str(&body)?)
    }

    /// Sends an HTTP request to a binary's Function URL; returns status, content type and body.
    pub async fn call_url(&self, binary: &str, request: &HttpCall) -> Result<(u16, String, String)> {
        let mut url = format!("{}{}", self.function_url(binary), request.path);
        if !request.query.is_empty() {
            url = format!("{url}?{}", request.query);
        }
        let method = reqwest::Method::from_bytes(request.method.as_bytes())?;
        let mut builder = self
            .http
            .request(method, url)
            .timeout(INVOKE_TIMEOUT)
            .body(request.body.clone());
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        let response = builder.send().await?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        Ok((status, content_type, response.text().await?))
    }
}

impl Drop for LambdaEmulator {
    /// Stops `cargo lambda watch` and every function process it started (its process group):
    /// asked to stop, then killed if it has not within a second, so that stopping the demo
    /// never waits on it nor leaves a process behind.
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let deadline = Instant::now() + Duration::from_secs(1);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // The functions may outlive their parent's exit: the whole group goes.
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}

/// An HTTP request taken from a Function URL / HTTP API event file, to replay over HTTP.
#[derive(Debug, Clone)]
pub struct HttpCall {
    pub method: String,
    /// The path below the function's URL (`/widget`), without the leading `/`.
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpCall {
    /// Reads the request out of an API Gateway v2 / Function URL event.
    pub fn from_event(event: &serde_json::Value) -> Result<Self> {
        use base64::Engine as _;
        let method = event["requestContext"]["http"]["method"]
            .as_str()
            .ok_or("event has no requestContext.http.method")?;
        let query = event["rawQueryString"].as_str().unwrap_or_default().to_owned();
        let path = event["rawPath"]
            .as_str()
            .unwrap_or("/")
            .trim_start_matches('/')
            .to_owned();
        let headers = event["headers"]
            .as_object()
            .map(|h| {
                h.iter()
                    // reqwest sets these for the local connection.
                    .filter(|(k, _)| !matches!(k.to_ascii_lowercase().as_str(), "host" | "content-length"))
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        let raw = event["body"].as_str().unwrap_or_default();
        let body = if event["isBase64Encoded"].as_bool() == Some(true) {
            base64::engine::general_purpose::STANDARD
                .decode(raw)
                .map_err(|e| format!("event body is not base64: {e}"))?
        } else {
            raw.as_bytes().to_vec()
        };
        Ok(Self {
            method: method.to_owned(),
            path,
            query,
            headers,
            body,
        })
    }
}

/// One line of the env file `cargo lambda watch` reads (dotenv): a value with spaces, quotes or
/// `#` (a JSON setting such as `BUSINESS_HOURS`) goes in single quotes, which dotenv takes
/// literally; one that holds a single quote or a newline cannot be written.
fn env_line(name: &str, value: &str) -> Result<String> {
    if value.contains(['\'', '\n']) {
        return Err(format!("{name}: a value with a single quote or a newline cannot go in the env file").into());
    }
    let plain = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./:+@,=%".contains(c));
    Ok(if plain {
        format!("{name}={value}")
    } else {
        format!("{name}='{value}'")
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn env_file_values_with_json_are_quoted_and_plain_ones_are_not() {
        assert_eq!(
            super::env_line("A", "http://127.0.0.1:9/x").unwrap(),
            "A=http://127.0.0.1:9/x"
        );
        assert_eq!(
            super::env_line("B", r#"{"time_zone": "UTC"}"#).unwrap(),
            r#"B='{"time_zone": "UTC"}'"#
        );
        assert!(super::env_line("C", "it's").is_err());
    }
}
