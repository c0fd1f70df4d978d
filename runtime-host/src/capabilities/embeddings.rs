//! `sandflow:host/embeddings`: text embeddings through the operator's model
//! providers (OpenAI-compatible `POST {base}/embeddings`).
//!
//! Configure (operator): the `llm` providers serve embeddings too; an
//! [`EmbeddingsConfig`] names the model used when a node names none.
//! Prepare (per run): nothing of its own (the run's secrets and token
//! counters). Host: [`RunState::embed_texts`] resolves the node's model
//! settings like `llm` does (a provider by name, never a URL from the
//! flow; the key on the host), sends the texts in one request bounded by
//! the run's remaining time, and counts the tokens into the run's usage.
//! `retrieval` uses it to embed queries and ingested chunks.

use super::io;
use super::llm::{Backend, Provider};
use crate::bindings::node::sandflow::host::embeddings::Host;
use crate::bindings::node::sandflow::host::types::{CapabilityError, ModelSettings};
use crate::sandbox::RunState;
use serde_json::{Value, json};

/// The model used when neither the node nor the operator names one.
pub const DEFAULT_MODEL: &str = "text-embedding-3-small";
/// Most texts one call embeds.
pub const MAX_TEXTS: usize = 256;
/// Most bytes of all texts of one call.
pub const MAX_INPUT_BYTES: usize = 4 << 20;
/// Most bytes read from a provider's answer.
pub const MAX_RESPONSE_BYTES: usize = 64 << 20;

/// How embeddings are made on this host.
#[derive(Debug, Clone, Default)]
pub struct EmbeddingsConfig {
    /// The model used when a node names none (else [`DEFAULT_MODEL`]).
    pub default_model: Option<String>,
}

/// Vectors and the model that made them: `provider/model`, the name under
/// which the document index keeps them apart from other models' vectors.
#[derive(Debug, Clone)]
pub(crate) struct Embedded {
    pub model: String,
    pub vectors: Vec<Vec<f32>>,
}

impl RunState {
    /// Whether this host can embed at all (it has an OpenAI-compatible provider).
    pub(crate) fn embeddings_available(&self) -> bool {
        self.caps.config.llm.providers.iter().any(|p| p.backend == Backend::OpenAi)
    }

    /// Embeds `texts` with the model `settings` select.
    pub(crate) fn embed_texts(
        &mut self,
        settings: &ModelSettings,
        texts: &[String],
    ) -> Result<Embedded, CapabilityError> {
        if texts.len() > MAX_TEXTS {
            return Err(CapabilityError::Invalid(format!(
                "{} texts to embed; one call embeds at most {MAX_TEXTS}",
                texts.len()
            )));
        }
        let bytes: usize = texts.iter().map(String::len).sum();
        if bytes > MAX_INPUT_BYTES {
            return Err(CapabilityError::Invalid(format!(
                "{bytes} bytes to embed; one call embeds at most {MAX_INPUT_BYTES}"
            )));
        }
        let provider = self.embedding_provider(settings)?.clone();
        let model = Some(settings.model.trim())
            .filter(|m| !m.is_empty())
            .or(self.caps.config.embeddings.default_model.as_deref().filter(|m| !m.trim().is_empty()))
            .unwrap_or(DEFAULT_MODEL)
            .to_owned();
        if texts.is_empty() {
            return Ok(Embedded { model: format!("{}/{model}", provider.name), vectors: Vec::new() });
        }
        let key = self.api_key(settings, &provider)?;
        let timeout =
            self.caps.remaining().ok_or_else(|| CapabilityError::Denied("the run's deadline has passed".into()))?;
        let span = tracing::info_span!(
            "runtime_host.embeddings",
            provider = %provider.name,
            model = %model,
            texts = texts.len(),
            bytes,
        );
        let _entered = span.enter();
        let mut request = io::client()
            .post(format!("{}/embeddings", provider.base_url))
            .json(&json!({"model": model, "input": texts}));
        if let Some(key) = &key {
            request = request.bearer_auth(key.expose());
        }
        let name = provider.name.clone();
        let exchange = async {
            let response = request
                .send()
                .await
                .map_err(|e| failed(format!("could not reach provider `{name}`: {}", e.without_url())))?;
            let status = response.status();
            let limit = if status.is_success() { MAX_RESPONSE_BYTES } else { 64 << 10 };
            let text = super::llm::stream::read_limited(response, limit)
                .await
                .map_err(|e| failed(format!("reading provider `{name}`'s embeddings: {e}")))?;
            if !status.is_success() {
                let detail = serde_json::from_str::<Value>(&text)
                    .ok()
                    .and_then(|j| {
                        j.pointer("/error/message").and_then(Value::as_str).map(|m| m.chars().take(500).collect())
                    })
                    .unwrap_or_else(|| "no details".to_owned());
                return Err(failed(format!("provider `{name}` answered {status} to an embeddings request: {detail}")));
            }
            serde_json::from_str::<Value>(&text)
                .map_err(|e| failed(format!("provider `{name}` answered something other than JSON: {e}")))
        };
        self.caps.calling_out();
        let answer = io::block_on(async { tokio::time::timeout(timeout, exchange).await })
            .map_err(|_| failed(format!("provider `{name}` did not embed before the run's deadline")))??;
        let vectors = parse(&answer, texts.len()).map_err(|e| failed(format!("provider `{name}`: {e}")))?;
        let tokens = answer.pointer("/usage/prompt_tokens").and_then(Value::as_u64).unwrap_or(0);
        self.caps.tokens.input += tokens;
        self.caps.checkpoint();
        Ok(Embedded { model: format!("{}/{model}", provider.name), vectors })
    }

    /// The provider that embeds for `settings`: the one named, else the
    /// first OpenAI-compatible one.
    fn embedding_provider(&self, settings: &ModelSettings) -> Result<&Provider, CapabilityError> {
        let providers = &self.caps.config.llm.providers;
        let wanted = settings.provider.trim();
        if wanted.is_empty() {
            return providers.iter().find(|p| p.backend == Backend::OpenAi).ok_or_else(|| {
                CapabilityError::NotConfigured(
                    "no embeddings provider is configured on this host; the operator adds an OpenAI-compatible one \
                     with --llm-provider NAME=openai,BASE_URL"
                        .into(),
                )
            });
        }
        let provider = self.caps.config.llm.resolve(settings)?;
        if provider.backend != Backend::OpenAi {
            return Err(CapabilityError::NotConfigured(format!(
                "provider `{}` speaks Anthropic Messages, which has no embeddings API; choose an OpenAI-compatible provider",
                provider.name
            )));
        }
        Ok(provider)
    }
}

/// The vectors of an OpenAI embeddings answer, in input order.
fn parse(answer: &Value, expected: usize) -> Result<Vec<Vec<f32>>, String> {
    let data = answer["data"].as_array().ok_or("the answer has no `data`")?;
    let mut vectors: Vec<Option<Vec<f32>>> = vec![None; expected];
    for (position, item) in data.iter().enumerate() {
        let index = item["index"].as_u64().and_then(|i| usize::try_from(i).ok()).unwrap_or(position);
        let vector: Vec<f32> = item["embedding"]
            .as_array()
            .ok_or("an embedding is not a list of numbers")?
            .iter()
            .map(|x| x.as_f64().map(|x| x as f32).filter(|x| x.is_finite()))
            .collect::<Option<_>>()
            .ok_or("an embedding holds something other than finite numbers")?;
        *vectors.get_mut(index).ok_or("an embedding's index is out of range")? = Some(vector);
    }
    vectors.into_iter().collect::<Option<Vec<_>>>().ok_or_else(|| format!("expected {expected} embeddings"))
}

fn failed(message: String) -> CapabilityError {
    tracing::warn!(%message, "embeddings call failed");
    CapabilityError::Failed(message)
}

impl Host for RunState {
    fn embed(&mut self, model: ModelSettings, texts: Vec<String>) -> Result<Vec<Vec<f32>>, CapabilityError> {
        self.embed_texts(&model, &texts).map(|embedded| embedded.vectors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_answers_in_input_order() {
        let answer = json!({"data": [
            {"index": 1, "embedding": [0.5, 1.0]},
            {"index": 0, "embedding": [1.0, 0.0]},
        ]});
        assert_eq!(parse(&answer, 2).expect("parses"), [vec![1.0, 0.0], vec![0.5, 1.0]]);
        assert!(parse(&answer, 3).is_err());
        assert!(parse(&json!({"data": [{"index": 7, "embedding": [1.0]}]}), 1).is_err());
        assert!(parse(&json!({"data": [{"embedding": ["x"]}]}), 1).is_err());
        assert!(parse(&json!({}), 1).is_err());
    }
}
