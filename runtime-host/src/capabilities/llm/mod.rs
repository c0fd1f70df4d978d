//! `sandflow:host/llm`: chat models behind one interface.
//!
//! Configure (operator): [`LlmConfig`] lists providers, each a backend type
//! (`openai` for every OpenAI-compatible server: OpenAI, Azure, Ollama, vLLM,
//! llama.cpp, …; `anthropic` for Anthropic Messages), a base URL and a
//! default model. Prepare (per run): the run's secrets and token stream.
//! Host: [`complete`] resolves the node's model settings against the
//! providers, sends the conversation, forwards tokens as they arrive when
//! the client streams, and counts tokens into the run's usage.
//!
//! A flow never chooses where its requests go: the node's provider name
//! selects a configured provider, and a base URL in the flow is ignored (a
//! seller's flow must not point the host at an address of its choosing).
//! Credentials never enter the sandbox: the node names a secret.

mod anthropic;
mod openai;
pub(crate) mod stream;

use super::io;
use super::secrets::Secret;
use crate::bindings::node::sandflow::host::llm::{
    ChatMessage, Completion, CompletionRequest, Host, TokenUsage, ToolCall,
};
use crate::bindings::node::sandflow::host::types::{CapabilityError, ModelSettings};
use crate::sandbox::RunState;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// Most bytes read from a provider's answer.
pub const MAX_RESPONSE_BYTES: usize = 8 << 20;

/// The model providers a host offers.
#[derive(Debug, Clone, Default)]
pub struct LlmConfig {
    /// Providers; the first is the default for nodes that name none.
    pub providers: Vec<Provider>,
}

/// The wire protocol of a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// OpenAI Chat Completions, and every server compatible with it.
    OpenAi,
    /// Anthropic Messages.
    Anthropic,
}

/// One configured provider.
#[derive(Debug, Clone, PartialEq)]
pub struct Provider {
    /// The name nodes use (`OpenAI`, `Anthropic`, `Ollama`, …), compared
    /// without regard to case.
    pub name: String,
    /// Its protocol.
    pub backend: Backend,
    /// Base URL, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    /// Model used when a node names none.
    pub default_model: String,
    /// The secret holding the credential when the node names none:
    /// `<NAME>_API_KEY` (`OPENAI_API_KEY`, …).
    pub key_secret: String,
}

impl FromStr for Provider {
    type Err = String;

    /// `NAME=BACKEND,BASE_URL[,DEFAULT_MODEL]`, e.g.
    /// `OpenAI=openai,https://api.openai.com/v1,gpt-4o-mini`.
    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let usage = "a provider is NAME=BACKEND,BASE_URL[,DEFAULT_MODEL] with BACKEND `openai` or `anthropic`, \
                     e.g. OpenAI=openai,https://api.openai.com/v1,gpt-4o-mini";
        let (name, rest) = spec.split_once('=').ok_or_else(|| format!("`{spec}`: {usage}"))?;
        let mut parts = rest.split(',');
        let backend = match parts.next().map(str::trim) {
            Some("openai") => Backend::OpenAi,
            Some("anthropic") => Backend::Anthropic,
            _ => return Err(format!("`{spec}`: {usage}")),
        };
        let base_url = parts
            .next()
            .map(str::trim)
            .filter(|u| u.starts_with("http"))
            .ok_or_else(|| format!("`{spec}`: the base URL must start with http:// or https://; {usage}"))?;
        let name = name.trim();
        Ok(Self {
            name: name.to_owned(),
            backend,
            base_url: base_url.trim_end_matches('/').to_owned(),
            default_model: parts.next().map(str::trim).unwrap_or_default().to_owned(),
            key_secret: format!("{}_API_KEY", name.to_ascii_uppercase().replace([' ', '-'], "_")),
        })
    }
}

impl LlmConfig {
    /// The provider `settings` select: by name, or the first one when the
    /// node names none.
    pub(crate) fn resolve(&self, settings: &ModelSettings) -> Result<&Provider, CapabilityError> {
        let wanted = settings.provider.trim();
        let found = if wanted.is_empty() {
            self.providers.first()
        } else {
            self.providers.iter().find(|p| p.name.eq_ignore_ascii_case(wanted))
        };
        found.ok_or_else(|| {
            let offered: Vec<&str> = self.providers.iter().map(|p| p.name.as_str()).collect();
            CapabilityError::NotConfigured(if offered.is_empty() {
                "no language model provider is configured on this host; the operator adds one with \
                 --llm-provider NAME=BACKEND,BASE_URL[,MODEL]"
                    .to_owned()
            } else {
                format!("the model provider `{wanted}` is not offered here; choose one of: {}", offered.join(", "))
            })
        })
    }
}

/// Tokens a run used, summed over its model calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenCount {
    /// Tokens sent.
    pub input: u64,
    /// Tokens received.
    pub output: u64,
}

/// One model call, resolved: where it goes and with which key.
pub(crate) struct Call<'a> {
    provider: &'a Provider,
    model: String,
    key: Option<Secret>,
}

impl Call<'_> {
    fn endpoint(&self) -> String {
        match self.provider.backend {
            Backend::OpenAi => format!("{}/chat/completions", self.provider.base_url),
            Backend::Anthropic => format!("{}/messages", self.provider.base_url),
        }
    }
}

impl fmt::Debug for Call<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Call").field("provider", &self.provider.name).field("model", &self.model).finish()
    }
}

impl RunState {
    /// The credential for a call: the node's `api_key` field (a global
    /// variable it names, or a key written into the flow); else the
    /// provider's `<NAME>_API_KEY` secret.
    ///
    /// The node's settings may name the secret too, but only the one its
    /// `api_key` field names: a guest choosing any secret of the run would
    /// send, say, the operator's key for one provider to another. An
    /// agent's secret (one bound to hosts) goes only to the provider it is
    /// named for (`OPENAI_API_KEY` to `OpenAI`) or to one whose host it
    /// lists.
    pub(crate) fn api_key(
        &self,
        settings: &ModelSettings,
        provider: &Provider,
    ) -> Result<Option<Secret>, CapabilityError> {
        use sandflow_flow_compiler::ir::ParamValue;
        let secrets = &self.caps.secrets;
        let field = self.flow.as_ref().and_then(|run| run.param(&self.caps.node_id, "api_key"));
        if let Some(name) = settings.api_key_secret.as_deref().filter(|n| !n.is_empty())
            && !matches!(field, Some(ParamValue::Secret(given)) if given == name)
        {
            return Err(CapabilityError::Denied(format!(
                "the node asks for secret `{name}` as its model key, which its flow does not give it; set the node's API key field to that global variable"
            )));
        }
        Ok(match field {
            Some(ParamValue::Secret(name)) => {
                let secret = secrets.get(name).cloned();
                // The flow picks the provider: a buyer's key goes to the
                // provider it is named for, or to a host its owner listed.
                let bound_elsewhere = secret.as_ref().is_some_and(|s| {
                    s.reach().is_some()
                        && *name != provider.key_secret
                        && !reqwest::Url::parse(&provider.base_url).is_ok_and(|url| s.may_reach(&url))
                });
                if bound_elsewhere {
                    return Err(CapabilityError::Denied(format!(
                        "the global variable `{name}` is not provider `{}`'s key (`{}`) and its hosts do not list \
                         the provider's; whoever set it lists the hosts it may go to",
                        provider.name, provider.key_secret
                    )));
                }
                secret
            }
            Some(ParamValue::Value(serde_json::Value::String(key))) if !key.trim().is_empty() => {
                Some(Secret::new(key.trim()))
            }
            _ => secrets.get(&provider.key_secret).cloned(),
        })
    }
}

impl Host for RunState {
    fn complete(&mut self, mut request: CompletionRequest) -> Result<Completion, CapabilityError> {
        let caps = &self.caps;
        if let Some(persona) = caps.persona.as_deref().and_then(|p| p.system_message()) {
            request.messages.insert(
                0,
                ChatMessage { role: "system".into(), content: persona, tool_calls: Vec::new(), tool_call_id: None },
            );
        }
        let provider = caps.config.llm.resolve(&request.model)?;
        let model = Some(request.model.model.trim()).filter(|m| !m.is_empty()).unwrap_or(&provider.default_model);
        if model.is_empty() {
            return Err(CapabilityError::Invalid(format!(
                "no model is selected for provider `{}` and it has no default model; choose a model in the node",
                provider.name
            )));
        }
        let key = self.api_key(&request.model, provider)?;
        let caps = &self.caps;
        let call = Call { provider, model: model.to_owned(), key };
        let timeout =
            caps.remaining().ok_or_else(|| CapabilityError::Denied("the run's deadline has passed".into()))?;
        let tokens = if request.stream_tokens { caps.token_sink() } else { None };
        let span = tracing::info_span!("runtime_host.llm", provider = %provider.name, model = %call.model, streamed = tokens.is_some());
        caps.calling_out();
        let completion = span.in_scope(|| send(&call, &request, tokens, timeout))?;
        self.caps.tokens.input += u64::from(completion.usage.input_tokens);
        self.caps.tokens.output += u64::from(completion.usage.output_tokens);
        self.caps.checkpoint();
        Ok(completion)
    }
}

/// Sends `request`, streamed when `tokens` is given (each text piece goes to
/// it as it arrives), and waits at most `timeout`.
fn send(
    call: &Call<'_>,
    request: &CompletionRequest,
    tokens: Option<super::TokenSink>,
    timeout: Duration,
) -> Result<Completion, CapabilityError> {
    let streamed = tokens.is_some();
    let body = match call.provider.backend {
        Backend::OpenAi => openai::body(&call.model, request, streamed)?,
        Backend::Anthropic => anthropic::body(&call.model, request, streamed)?,
    };
    let mut http = io::client().post(call.endpoint()).json(&body);
    if let Some(key) = &call.key {
        http = match call.provider.backend {
            Backend::OpenAi => http.bearer_auth(key.expose()),
            Backend::Anthropic => http.header("x-api-key", key.expose()),
        };
    }
    if call.provider.backend == Backend::Anthropic {
        http = http.header("anthropic-version", "2023-06-01");
    }
    let name = &call.provider.name;
    let exchange = async {
        let response =
            http.send().await.map_err(|e| failed(format!("could not reach provider `{name}`: {}", e.without_url())))?;
        let status = response.status();
        if !status.is_success() {
            let text = stream::read_limited(response, 64 << 10).await.unwrap_or_default();
            return Err(failed(format!(
                "provider `{name}` answered {status}: {}",
                provider_message(&text).unwrap_or_else(|| "no details".into())
            )));
        }
        if let Some(tokens) = tokens {
            let mut acc = stream::Accumulator::default();
            stream::events(response, MAX_RESPONSE_BYTES, |event, data| {
                let piece = match call.provider.backend {
                    Backend::OpenAi => openai::apply_chunk(&mut acc, data),
                    Backend::Anthropic => anthropic::apply_event(&mut acc, event, data),
                };
                if let Some(piece) = piece.filter(|p| !p.is_empty()) {
                    tokens.send(&piece);
                }
            })
            .await
            .map_err(|e| failed(format!("provider `{name}` stream broke off: {e}")))?;
            Ok(acc.finish())
        } else {
            let text = stream::read_limited(response, MAX_RESPONSE_BYTES)
                .await
                .map_err(|e| failed(format!("reading provider `{name}`'s answer: {e}")))?;
            let json: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| failed(format!("provider `{name}` answered something other than JSON: {e}")))?;
            match call.provider.backend {
                Backend::OpenAi => openai::parse(&json),
                Backend::Anthropic => anthropic::parse(&json),
            }
            .map_err(|e| failed(format!("provider `{name}`: {e}")))
        }
    };
    io::block_on(async { tokio::time::timeout(timeout, exchange).await })
        .map_err(|_| failed(format!("provider `{name}` did not answer before the run's deadline")))?
}

fn failed(message: String) -> CapabilityError {
    tracing::warn!(%message, "model call failed");
    CapabilityError::Failed(message)
}

/// The `message` of an OpenAI or Anthropic error body.
fn provider_message(body: &str) -> Option<String> {
    let json: serde_json::Value = serde_json::from_str(body).ok()?;
    json.pointer("/error/message").and_then(|m| m.as_str()).map(|m| m.chars().take(500).collect())
}

/// A completion assembled from its parts.
pub(crate) fn completion(text: String, calls: Vec<ToolCall>, finish: String, usage: TokenUsage) -> Completion {
    Completion {
        message: ChatMessage { role: "assistant".into(), content: text, tool_calls: calls, tool_call_id: None },
        finish_reason: finish,
        usage,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_provider_specs() {
        let p: Provider = "OpenAI=openai,http://127.0.0.1:8089/v1/,gpt-4o-mini".parse().expect("valid spec");
        assert_eq!(p.backend, Backend::OpenAi);
        assert_eq!(p.base_url, "http://127.0.0.1:8089/v1");
        assert_eq!(p.default_model, "gpt-4o-mini");
        assert_eq!(p.key_secret, "OPENAI_API_KEY");
        let err = "OpenAI=grpc,http://x".parse::<Provider>().expect_err("unknown backend");
        assert!(err.contains("`openai` or `anthropic`"), "{err}");
        assert!("Local=openai,file:///etc".parse::<Provider>().is_err());
    }

    #[test]
    fn resolves_by_name_or_default() {
        let config = LlmConfig {
            providers: vec![
                "OpenAI=openai,http://a/v1,m".parse().expect("valid"),
                "Anthropic=anthropic,http://b/v1,c".parse().expect("valid"),
            ],
        };
        let settings = |provider: &str| ModelSettings {
            provider: provider.into(),
            model: String::new(),
            api_key_secret: None,
            temperature: None,
            max_tokens: None,
            base_url: None,
            extra: "{}".into(),
        };
        assert_eq!(config.resolve(&settings("")).ok().map(|p| p.name.as_str()), Some("OpenAI"));
        assert_eq!(config.resolve(&settings("anthropic")).ok().map(|p| p.name.as_str()), Some("Anthropic"));
        assert!(
            matches!(config.resolve(&settings("Groq")), Err(CapabilityError::NotConfigured(m)) if m.contains("OpenAI, Anthropic"))
        );
    }
}
