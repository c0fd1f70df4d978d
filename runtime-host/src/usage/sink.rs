//! Where usage records go: anything that takes a batch and says it has it.

use super::UsageRecord;
use std::time::Duration;

/// Why a batch was not taken.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Not now (unreachable, failing, not allowed yet): it is sent again.
    #[error("the usage sink did not take the batch: {0}")]
    Unavailable(String),
    /// The sink read the batch and refuses what it holds (a record it
    /// finds invalid, a batch too large): sent again, it would be refused
    /// again. The outbox halves such a batch until it finds the records
    /// at fault and sets them aside.
    #[error("the usage sink refused the batch: {0}")]
    Rejected(String),
}

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
        let response = request.send().await.map_err(|e| SinkError::Unavailable(e.to_string()))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let refusal = format!("{} answered {status}", self.url);
        // Bad request, too large, unprocessable: the records, not the moment.
        if matches!(status.as_u16(), 400 | 413 | 422) {
            let body = response.text().await.unwrap_or_default();
            let reason: String = body.chars().take(512).collect();
            return Err(SinkError::Rejected(format!("{refusal}: {reason}")));
        }
        Err(SinkError::Unavailable(refusal))
    }
}
