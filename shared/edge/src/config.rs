//! Configuration from the environment, and secrets from the environment or SSM Parameter Store.
//! A secret `NAME` is read from the variable `NAME` (local runs) or, when that is unset, from the
//! SecureString parameter named by `NAME_PARAMETER` (deployed: the template passes the name,
//! never the value).

use std::fmt;

/// A setting or secret a function cannot start without: its `from_env` fails, and so does the
/// cold start.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Unset or empty: names the variable (or the SSM parameter whose value is empty).
    #[error("configuration {0} is not set")]
    Missing(String),
    /// Set but not valid: says which and why.
    #[error("configuration is not valid: {0}")]
    Invalid(String),
    /// The SSM parameter named by `{var}_PARAMETER` could not be read.
    #[error("could not read SSM parameter for {var}: {source}")]
    Ssm {
        /// The secret's variable (`NAME`, not `NAME_PARAMETER`).
        var: String,
        /// The SDK's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl From<throughline_queue::QueueUrlMissing> for ConfigError {
    fn from(missing: throughline_queue::QueueUrlMissing) -> Self {
        ConfigError::Missing(missing.0.to_owned())
    }
}

/// A secret value; `Debug` never prints it.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// A secret of this value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself, to compute a MAC with; never to log.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A variable that must be set (and not empty).
pub fn required_env(var: &str) -> Result<String, ConfigError> {
    optional_env(var).ok_or_else(|| ConfigError::Missing(var.to_owned()))
}

/// A variable that may be absent; empty counts as absent (templates pass "" for "unset").
pub fn optional_env(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.trim().is_empty())
}

/// An optional duration setting: `value` (the variable's, if set) as positive whole seconds, or
/// `default` when unset.
pub fn positive_seconds(var: &str, value: Option<String>, default: i64) -> Result<chrono::TimeDelta, ConfigError> {
    let seconds = match value {
        None => Some(default),
        Some(text) => text.trim().parse().ok().filter(|s: &i64| *s > 0),
    };
    seconds
        .and_then(chrono::TimeDelta::try_seconds)
        .ok_or_else(|| ConfigError::Invalid(format!("{var} must be positive seconds")))
}

/// Reads the secret `var` from the environment, or from SSM via `{var}_PARAMETER`.
pub async fn load_secret(aws: &aws_config::SdkConfig, var: &str) -> Result<Secret, ConfigError> {
    if let Some(value) = optional_env(var) {
        return Ok(Secret(value));
    }
    let parameter_var = format!("{var}_PARAMETER");
    let Some(name) = optional_env(&parameter_var) else {
        return Err(ConfigError::Missing(format!("{var} (or {parameter_var})")));
    };
    read_parameter(&aws_sdk_ssm::Client::new(aws), var, &name)
        .await
        .map(Secret)
}

/// The one read of an SSM parameter (decrypted; an empty value is missing), for secrets and
/// reloading documents alike. `var` names the setting in errors.
async fn read_parameter(ssm: &aws_sdk_ssm::Client, var: &str, name: &str) -> Result<String, ConfigError> {
    let output = ssm
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
        .map_err(|e| ConfigError::Ssm {
            var: var.to_owned(),
            source: Box::new(e),
        })?;
    output
        .parameter
        .and_then(|p| p.value)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ConfigError::Missing(format!("value of SSM parameter {name}")))
}

/// A configuration document (a JSON document in SSM, like the secrets documents, or in the
/// environment for local runs) read again when older than `every`, so that a change in SSM
/// reaches running functions within that time without a deployment. A document that no longer
/// parses, or a read that fails, keeps the last good one (logged without its contents).
pub struct Reloading<T> {
    source: DocumentSource,
    parse: fn(&str) -> Result<T, String>,
    every: std::time::Duration,
    current: std::sync::Mutex<(std::time::Instant, std::sync::Arc<T>)>,
}

/// Where a reloading document is read from.
#[derive(Debug, Clone)]
enum DocumentSource {
    /// The environment's value (local runs): it never changes.
    Env(String),
    /// An SSM parameter, by name.
    Ssm { name: String, client: aws_sdk_ssm::Client },
}

impl DocumentSource {
    async fn read(&self) -> Result<String, String> {
        match self {
            DocumentSource::Env(value) => Ok(value.clone()),
            DocumentSource::Ssm { name, client } => read_parameter(client, name, name).await.map_err(|e| e.to_string()),
        }
    }
}

impl<T> fmt::Debug for Reloading<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reloading")
            .field("every", &self.every)
            .finish_non_exhaustive()
    }
}

impl<T> Reloading<T> {
    /// The document `var` (or the SSM parameter `{var}_PARAMETER` names), read once now:
    /// `None` when neither is set (the feature is off); an error when it does not parse.
    pub async fn from_env(
        aws: &aws_config::SdkConfig,
        var: &str,
        parse: fn(&str) -> Result<T, String>,
        every: std::time::Duration,
    ) -> Result<Option<Self>, ConfigError> {
        let source = match (optional_env(var), optional_env(&format!("{var}_PARAMETER"))) {
            (Some(value), _) => DocumentSource::Env(value),
            (None, Some(name)) => DocumentSource::Ssm {
                name,
                client: aws_sdk_ssm::Client::new(aws),
            },
            (None, None) => return Ok(None),
        };
        Self::from_source(source, parse, every)
            .await
            .map(Some)
            .map_err(|e| ConfigError::Invalid(format!("{var}: {e}")))
    }

    /// The document in the SSM parameter `name`, read once now.
    pub async fn from_parameter(
        aws: &aws_config::SdkConfig,
        name: &str,
        parse: fn(&str) -> Result<T, String>,
        every: std::time::Duration,
    ) -> Result<Self, ConfigError> {
        let source = DocumentSource::Ssm {
            name: name.to_owned(),
            client: aws_sdk_ssm::Client::new(aws),
        };
        Self::from_source(source, parse, every)
            .await
            .map_err(|e| ConfigError::Invalid(format!("{name}: {e}")))
    }

    async fn from_source(
        source: DocumentSource,
        parse: fn(&str) -> Result<T, String>,
        every: std::time::Duration,
    ) -> Result<Self, String> {
        let value = parse(&source.read().await?)?;
        Ok(Self {
            source,
            parse,
            every,
            current: std::sync::Mutex::new((std::time::Instant::now(), std::sync::Arc::new(value))),
        })
    }

    /// The document, read again first if it is older than `every`.
    pub async fn current(&self) -> std::sync::Arc<T> {
        let (read_at, value) = {
            let guard = self.current.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            (guard.0, guard.1.clone())
        };
        if read_at.elapsed() < self.every {
            return value;
        }
        let fresh = match self.source.read().await {
            Ok(document) => (self.parse)(&document),
            Err(e) => Err(e),
        };
        let mut guard = self.current.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match fresh {
            Ok(fresh) => *guard = (std::time::Instant::now(), std::sync::Arc::new(fresh)),
            Err(error) => {
                tracing::warn!(%error, "configuration document not reloaded; keeping the last one");
                guard.0 = std::time::Instant::now();
            }
        }
        guard.1.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_settings_are_positive_seconds_with_a_default() {
        const VAR: &str = "CHAT_IDENTITY_TOKEN_MAX_LIFETIME_SECONDS";
        assert_eq!(positive_seconds(VAR, None, 86400).unwrap(), chrono::TimeDelta::days(1));
        assert_eq!(
            positive_seconds(VAR, Some(" 3600 ".into()), 86400).unwrap(),
            chrono::TimeDelta::hours(1)
        );
        for bad in ["0", "-5", "1h", "", "9223372036854775807"] {
            let err = positive_seconds(VAR, Some(bad.into()), 86400).unwrap_err();
            assert!(
                matches!(&err, ConfigError::Invalid(m) if *m == format!("{VAR} must be positive seconds")),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn secret_debug_is_redacted() {
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "Secret(***)");
    }
}
