//! Where usage records go: anything that takes a batch and says it has it.

use super::UsageRecord;
use std::time::Duration;

/// Why a batch was not taken; it will be sent again.
#[derive(Debug, thiserror::Error)]
#[error("the usage sink did not take the batch: {0}")]
pub struct SinkError(pub String);

/// Takes batches of usage records. Must be idempotent by `idempotency_key`:
/// a batch may arrive more than once.
pub trait Sink: Send + Sync + 'static {
    /// Delivers one batch; `Ok` means the sink has it durably.
    fn deliver(&self, batch: &[UsageRecord]) -> impl Future<Output = Result<(), SinkError>> + Send;
}

/// The control plane's `POST /api/runtime/usage/`, as a JSON array.
pub struct HttpSink {
    client: reqwest::Client,
    url: String,
    token: Option<String>,
}

impl HttpSink {
    /// A sink posting to `url`, with `token` as a bearer credential if given.
    pub fn new(url: impl Into<String>, token: Option<String>) -> Self {
        let client =
            crate::capabilities::io::client_builder().timeout(Duration::from_secs(10)).build().unwrap_or_default();
        Self { client, url: url.into(), token }
    }
}

impl Sink for HttpSink {
    async fn deliver(&self, batch: &[UsageRecord]) -> Result<(), SinkError> {
        let mut request = self.client.post(&self.url).json(batch);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(|e| SinkError(e.to_string()))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(SinkError(format!("{} answered {}", self.url, response.status())))
        }
    }
}
