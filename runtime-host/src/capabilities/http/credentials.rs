//! Secrets in request headers, filled in on the host.
//!
//! A node whose credential is a global variable never sees it (the field
//! is left out of its invocation); it writes `{{secret:FIELD}}` into a
//! header value instead (`sandflow_sdk::secret_field`), and the host
//! replaces it with the key field `FIELD` of the running node holds: the
//! global variable the flow names there, or a key written into the flow.
//!
//! What it defends against: a node naming a credential of its choosing.
//! The guest names only a field of its own node; which variable that is
//! comes from the flow's plan. Variables resolve among the agent's own
//! secrets (the buyer's and seller's), never the operator's: those are
//! for the model providers the operator configures, and `http` reaches any
//! host on the allow-list.
//!
//! And against a seller's flow sending a buyer's key to a host of the
//! seller's choosing, or a buyer's tweak sending a seller's key to the
//! buyer's: the flow (its tweaks, the node's code) pick the URL, so an
//! agent's secret goes only to the hosts its owner listed with it
//! ([`Secret::for_hosts`]), checked against the URL the node asked for
//! (before the operator's routes, which are trusted); a redirect elsewhere
//! drops it, as for any filled header.

use super::super::secrets::{Secret, Secrets};
use crate::bindings::node::sandflow::host::types::CapabilityError;
use sandflow_flow_compiler::ir::ParamValue;

const OPEN: &str = "{{secret:";
const CLOSE: &str = "}}";

/// Replaces every `{{secret:FIELD}}` in `headers` of a request to `url`
/// with the key `lookup` gives for `FIELD` (the plan's value of that field
/// of the running node), and names the headers it filled. A global
/// variable whose owner lists the hosts it may go to is refused for any
/// other ([`Secret::may_reach`]).
pub(crate) fn fill<'a>(
    headers: &mut [(String, String)],
    url: &str,
    lookup: impl Fn(&str) -> Option<&'a ParamValue>,
    secrets: &Secrets,
) -> Result<Vec<String>, CapabilityError> {
    let mut filled = Vec::new();
    for (name, value) in headers.iter_mut() {
        // Scanning on after each key, so a key is never read as a reference.
        let mut from = 0;
        while let Some(found) = value[from..].find(OPEN) {
            let start = from + found;
            let rest = &value[start + OPEN.len()..];
            let end = rest.find(CLOSE).ok_or_else(|| {
                CapabilityError::Invalid("a `{{secret:FIELD}}` reference in a header is not closed".into())
            })?;
            let field = rest[..end].trim().to_owned();
            let key = resolve(&field, lookup(&field), secrets, url)?;
            value.replace_range(start..start + OPEN.len() + end + CLOSE.len(), key.expose());
            from = start + key.expose().len();
            // As sent: `headers` trims the name, and so must the redirect
            // that strips it again.
            filled.push(name.trim().to_owned());
        }
    }
    Ok(filled)
}

fn resolve(field: &str, param: Option<&ParamValue>, secrets: &Secrets, url: &str) -> Result<Secret, CapabilityError> {
    match param {
        Some(ParamValue::Secret(name)) => {
            let secret = secrets.get(name).cloned().ok_or_else(|| {
                CapabilityError::NotConfigured(format!(
                    "field `{field}` names the global variable `{name}`, which is not set for this agent; set it \
                     among the agent's secrets"
                ))
            })?;
            let target = reqwest::Url::parse(url.trim())
                .map_err(|e| CapabilityError::Invalid(format!("the request's URL is not a URL: {e}")))?;
            if !secret.may_reach(&target) {
                let host = target.host_str().unwrap_or_default();
                let allowed = match secret.reach() {
                    Some(hosts) if !hosts.is_empty() => {
                        hosts.iter().map(|h| format!("`{h}`")).collect::<Vec<_>>().join(", ")
                    }
                    _ => "no host".into(),
                };
                return Err(CapabilityError::Denied(format!(
                    "the global variable `{name}` may be sent to {allowed}, not to `{host}`: whoever set it listed \
                     the hosts it may go to (its `hosts`)"
                )));
            }
            Ok(secret)
        }
        Some(ParamValue::Value(serde_json::Value::String(key))) if !key.trim().is_empty() => {
            Ok(Secret::new(key.trim()))
        }
        _ => Err(CapabilityError::Invalid(format!(
            "field `{field}` of this node holds no key and names no global variable; set it in the flow or with a \
             tweak"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://api.assemblyai.com/v2/transcript";

    fn headers(value: &str) -> Vec<(String, String)> {
        vec![("authorization".into(), value.into())]
    }

    #[test]
    fn fills_the_fields_secret_or_written_key() {
        let secrets: Secrets = [("AAI_KEY", "k-agent")].into_iter().collect();
        let variable = ParamValue::Secret("AAI_KEY".into());
        let mut sent = headers("Bearer {{secret:api_key}}");
        fill(&mut sent, URL, |f| (f == "api_key").then_some(&variable), &secrets).expect("fills");
        assert_eq!(sent[0].1, "Bearer k-agent");
        let written = ParamValue::Value(serde_json::json!(" k-flow "));
        let mut sent = headers("{{secret:api_key}}");
        fill(&mut sent, URL, |_| Some(&written), &secrets).expect("fills");
        assert_eq!(sent[0].1, "k-flow");
        let mut plain = headers("no reference");
        fill(&mut plain, URL, |_| None, &secrets).expect("nothing to fill");
        assert_eq!(plain[0].1, "no reference");
    }

    #[test]
    fn refuses_unset_variables_empty_fields_and_broken_references() {
        let secrets = Secrets::default();
        let variable = ParamValue::Secret("OPENAI_API_KEY".into());
        let Err(CapabilityError::NotConfigured(message)) =
            fill(&mut headers("{{secret:api_key}}"), URL, |_| Some(&variable), &secrets)
        else {
            panic!("an unset variable is not configured")
        };
        assert!(message.contains("`OPENAI_API_KEY`") && message.contains("not set for this agent"), "{message}");
        let empty = ParamValue::Value(serde_json::json!(""));
        assert!(matches!(
            fill(&mut headers("{{secret:api_key}}"), URL, |_| Some(&empty), &secrets),
            Err(CapabilityError::Invalid(m)) if m.contains("holds no key")
        ));
        assert!(matches!(
            fill(&mut headers("{{secret:api_key"), URL, |_| None, &secrets),
            Err(CapabilityError::Invalid(_))
        ));
    }

    #[test]
    fn a_buyers_variable_goes_only_to_the_hosts_it_lists() {
        let scoped = |hosts: &[&str]| {
            let mut secrets = Secrets::default();
            let hosts = hosts.iter().map(|h| h.parse().expect("pattern")).collect();
            secrets.insert("AAI_KEY", Secret::for_hosts("k-buyer", hosts));
            secrets
        };
        let variable = ParamValue::Secret("AAI_KEY".into());
        let mut sent = headers("{{secret:api_key}}");
        fill(&mut sent, URL, |_| Some(&variable), &scoped(&["api.assemblyai.com"])).expect("its host");
        assert_eq!(sent[0].1, "k-buyer");
        for (hosts, url) in [
            (&["api.assemblyai.com"][..], "https://collector.evil.example/?k=api.assemblyai.com"),
            (&["api.assemblyai.com"][..], "https://api.assemblyai.com.evil.example/"),
            (&[][..], URL),
        ] {
            let mut sent = headers("{{secret:api_key}}");
            let Err(CapabilityError::Denied(message)) = fill(&mut sent, url, |_| Some(&variable), &scoped(hosts))
            else {
                panic!("{url}: the variable must not go there")
            };
            assert!(message.contains("`AAI_KEY`") && !message.contains("k-buyer"), "{message}");
            assert_eq!(sent[0].1, "{{secret:api_key}}", "nothing filled");
        }
        // A key the seller wrote into the flow is the seller's to send.
        let written = ParamValue::Value(serde_json::json!("k-seller"));
        let mut sent = headers("{{secret:api_key}}");
        fill(&mut sent, "https://seller.example/", |_| Some(&written), &scoped(&[])).expect("the seller's own key");
        assert_eq!(sent[0].1, "k-seller");
    }
}
