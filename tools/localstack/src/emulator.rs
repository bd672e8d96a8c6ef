//! The moto server: the real AWS APIs (DynamoDB, SQS, S3, SSM) over HTTP on 127.0.0.1, stopped
//! when dropped or when the process that started it exits.

use std::net::TcpListener;
use std::process::Child;
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};

use crate::Result;
use crate::venv::Venv;

pub const REGION: &str = "us-east-1";
/// Dummy credentials: moto accepts any, and real ones must never reach a local stack.
pub const ACCESS_KEY: &str = "testing";
pub const SECRET_KEY: &str = "testing";

pub struct Moto {
    child: Child,
    /// The emulator exits when this pipe closes: when the process that started it exits, even
    /// one that never drops it (a test binary's shared emulator).
    _lifeline: std::process::ChildStdin,
    endpoint: String,
}

impl Moto {
    /// Starts moto on a free loopback port and waits until it answers.
    pub async fn start(venv: &Venv) -> Result<Self> {
        let port = free_port()?;
        let log = std::env::temp_dir().join(format!("throughline-moto-{port}.log"));
        // moto as installed, with DynamoDB's transaction isolation restored (see the script).
        let (child, lifeline) = venv.spawn_tool("moto_server.py", port, &[], &log)?;
        let mut moto = Self {
            child,
            _lifeline: lifeline,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = moto.child.try_wait()? {
                return Err(format!("the moto server exited ({status}); see {}", log.display()).into());
            }
            if http.get(format!("{}/moto-api/", moto.endpoint)).send().await.is_ok() {
                return Ok(moto);
            }
            if Instant::now() > deadline {
                let _ = moto.child.kill();
                return Err(format!("the moto server did not answer within 60 s; see {}", log.display()).into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// An SDK configuration aimed at this emulator.
    pub async fn sdk_config(&self) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(&self.endpoint)
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                ACCESS_KEY,
                SECRET_KEY,
                None,
                None,
                "throughline-local",
            ))
            .load()
            .await
    }

    /// Environment for a process (a Lambda function) that should talk to this emulator.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.endpoint.as_str()),
            ("AWS_REGION", REGION),
            ("AWS_DEFAULT_REGION", REGION),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
