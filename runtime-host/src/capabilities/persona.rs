//! The buyer's persona: who the agent is for their customers.
//!
//! A buyer configures a name, a system prompt and a tone for the agent
//! they subscribed to; the seller's flow stays as it is. The `llm`
//! capability puts the persona first in every conversation it sends, as a
//! system message, so every model call of the run speaks as the buyer's
//! agent without the seller's flow knowing about it.

use serde::Deserialize;

/// A buyer's persona for one agent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Persona {
    /// The agent's name, as customers see it.
    #[serde(default)]
    pub name: String,
    /// Instructions for the model.
    #[serde(default)]
    pub system_prompt: String,
    /// The tone to answer in (`friendly`, `formal`, …).
    #[serde(default)]
    pub tone: String,
}

impl Persona {
    /// The system message it adds, or `None` when it sets nothing.
    pub fn system_message(&self) -> Option<String> {
        let mut parts = Vec::new();
        if !self.name.trim().is_empty() {
            parts.push(format!("Your name is {}.", self.name.trim()));
        }
        if !self.system_prompt.trim().is_empty() {
            parts.push(self.system_prompt.trim().to_owned());
        }
        if !self.tone.trim().is_empty() {
            parts.push(format!("Answer in a {} tone.", self.tone.trim()));
        }
        (!parts.is_empty()).then(|| parts.join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn says_only_what_is_set() {
        assert_eq!(Persona::default().system_message(), None);
        let persona = Persona { name: "Ada".into(), system_prompt: " Help with orders. ".into(), tone: String::new() };
        assert_eq!(persona.system_message().as_deref(), Some("Your name is Ada.\nHelp with orders."));
    }
}
