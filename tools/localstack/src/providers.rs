//! The provider stub (`tools/provider_stub.py`): every send API Throughline calls, checked and
//! answered as its provider does, on 127.0.0.1. Stopped when dropped or when the process that
//! started it exits.

use std::process::Child;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::Result;
use crate::emulator::free_port;
use crate::venv::Venv;

pub struct ProviderStub {
    child: Child,
    _lifeline: std::process::ChildStdin,
    base: String,
    http: reqwest::Client,
}

/// One request the stub received.
#[derive(Debug, Clone)]
pub struct Received {
    /// `twilio`, `graph`, `telegram`, `x`, `mailgun`, `chat`.
    pub provider: String,
    /// The path after the provider's prefix.
    pub path: String,
    /// The headers, lower-case names.
    pub headers: serde_json::Map<String, Value>,
    /// The body as text.
    pub body: String,
}

impl ProviderStub {
    /// Starts the stub on a free port, accepting the credentials of `credentials(base URL)`.
    pub async fn start(venv: &Venv, credentials: impl FnOnce(&str) -> String) -> Result<Self> {
        let port = free_port()?;
        let base = format!("http://127.0.0.1:{port}");
        let dir = std::env::temp_dir();
        let document = dir.join(format!("throughline-provider-stub-{port}.json"));
        std::fs::write(&document, credentials(&base))?;
        let log = dir.join(format!("throughline-provider-stub-{port}.log"));
        let (child, lifeline) = venv.spawn_tool(
            "provider_stub.py",
            port,
            &["--credentials".as_ref(), document.as_os_str()],
            &log,
        )?;
        let mut stub = Self {
            child,
            _lifeline: lifeline,
            base,
            http: reqwest::Client::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = stub.child.try_wait()? {
                return Err(format!("the provider stub exited ({status}); see {}", log.display()).into());
            }
            if stub.requests().await.is_ok() {
                return Ok(stub);
            }
            if Instant::now() > deadline {
                return Err(format!("the provider stub did not answer within 30 s; see {}", log.display()).into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The base URL; each provider's API is under `/<provider>` (`/twilio`, `/graph`, …).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Every request received so far, in order.
    pub async fn requests(&self) -> Result<Vec<Received>> {
        let all: Vec<Value> = self
            .http
            .get(format!("{}/_stub/requests", self.base))
            .send()
            .await?
            .json()
            .await?;
        Ok(all
            .into_iter()
            .map(|r| Received {
                provider: r["provider"].as_str().unwrap_or_default().to_owned(),
                path: r["path"].as_str().unwrap_or_default().to_owned(),
                headers: r["headers"].as_object().cloned().unwrap_or_default(),
                body: r["body"].as_str().unwrap_or_default().to_owned(),
            })
            .collect())
    }

    /// The provider's next `times` authenticated requests get `status` and `body` (a JSON value,
    /// or a string sent as text) after `delay`; with `status` `None`, only the delay.
    pub async fn script(
        &self,
        provider: &str,
        status: Option<u16>,
        body: Value,
        headers: Value,
        delay: Duration,
        times: u32,
    ) -> Result<()> {
        let mut script = serde_json::json!({
            "provider": provider, "body": body, "headers": headers,
            "delay_ms": delay.as_millis() as u64, "times": times,
        });
        if let Some(status) = status {
            script["status"] = status.into();
        }
        self.post_script(script).await
    }

    /// The provider's next authenticated request to a path ending in `path` gets `status` and
    /// `body` (Twilio's Fetch Message of one sid, among others made at once).
    pub async fn script_path(&self, provider: &str, path: &str, status: u16, body: Value) -> Result<()> {
        self.post_script(serde_json::json!({
            "provider": provider, "path": path, "status": status, "body": body, "headers": {}, "times": 1,
        }))
        .await
    }

    async fn post_script(&self, script: Value) -> Result<()> {
        let answer = self
            .http
            .post(format!("{}/_stub/script", self.base))
            .json(&script)
            .send()
            .await?;
        if !answer.status().is_success() {
            return Err(format!("the provider stub refused the script ({})", answer.status()).into());
        }
        Ok(())
    }
}

impl Drop for ProviderStub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
