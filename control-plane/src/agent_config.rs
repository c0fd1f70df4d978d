//! What a buyer configures on their agent: a persona (sent to the runtime
//! with the agent), branding and the chat widget's settings, each checked
//! before it is stored.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// Who the agent is to its users.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Persona {
    /// Display name.
    pub name: String,
    /// Instructions given to the model before the user's input.
    pub system_prompt: String,
    /// Tone of voice ("friendly", "formal", …).
    pub tone: String,
}

/// How the agent's surfaces look.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Branding {
    /// `#rrggbb`.
    #[serde(default)]
    pub primary_color: Option<String>,
    /// An `https://` URL.
    #[serde(default)]
    pub logo_url: Option<String>,
    /// Title shown in the widget.
    #[serde(default)]
    pub title: Option<String>,
}

/// Where the widget sits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Position {
    /// Bottom right corner.
    #[default]
    BottomRight,
    /// Bottom left corner.
    BottomLeft,
}

/// The embeddable chat widget.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Widget {
    /// Origins (`https://shop.example`) allowed to embed the widget.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// First message shown.
    #[serde(default)]
    pub greeting: Option<String>,
    /// Corner.
    #[serde(default)]
    pub position: Position,
}

/// Most origins one widget may list.
pub const MAX_ORIGINS: usize = 50;

fn bounded(field: &str, value: &str, min: usize, max: usize) -> Result<String> {
    let value = value.trim();
    let chars = value.chars().count();
    if chars < min || chars > max {
        return Err(Error::Invalid(if min > 0 {
            format!("`{field}` must be {min} to {max} characters")
        } else {
            format!("`{field}` must be at most {max} characters")
        }));
    }
    if value.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(Error::Invalid(format!("`{field}` must not hold control characters")));
    }
    Ok(value.to_owned())
}

impl Persona {
    /// Checked and trimmed.
    pub fn checked(self) -> Result<Self> {
        Ok(Self {
            name: bounded("persona.name", &self.name, 1, 100)?,
            system_prompt: bounded("persona.system_prompt", &self.system_prompt, 0, 20_000)?,
            tone: bounded("persona.tone", &self.tone, 0, 50)?,
        })
    }
}

impl Branding {
    /// Checked and trimmed.
    pub fn checked(self) -> Result<Self> {
        let primary_color = self.primary_color.map(|c| c.trim().to_ascii_lowercase());
        if let Some(color) = &primary_color {
            let hex = color.strip_prefix('#').unwrap_or_default();
            if hex.len() != 6 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(Error::Invalid(format!("`branding.primary_color` must be `#rrggbb`, not `{color}`")));
            }
        }
        let logo_url = self.logo_url.map(|u| u.trim().to_owned());
        if let Some(url) = &logo_url {
            check_logo_url(url)?;
        }
        let title = self.title.as_deref().map(|t| bounded("branding.title", t, 1, 100)).transpose()?;
        Ok(Self { primary_color, logo_url, title })
    }
}

fn check_logo_url(url: &str) -> Result<()> {
    let refuse = || {
        Error::Invalid(
            "`branding.logo_url` must be an https:// URL with a host, like https://cdn.example/logo.png".into(),
        )
    };
    let rest = url.strip_prefix("https://").ok_or_else(refuse)?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_ok = !host.is_empty() && !host.contains('@') && host_chars_ok(host.split(':').next().unwrap_or_default());
    if !host_ok || url.len() > 2048 || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(refuse());
    }
    Ok(())
}

fn host_chars_ok(host: &str) -> bool {
    !host.is_empty()
        && !host.starts_with(['.', '-'])
        && !host.ends_with(['.', '-'])
        && host.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
}

/// Checks a browser origin: `https://host[:port]` (plain `http` only for
/// `localhost` and `127.0.0.1`), no path, no wildcard; returns it in lower
/// case.
pub fn check_origin(origin: &str) -> Result<String> {
    let origin = origin.trim().to_ascii_lowercase();
    let refuse = || {
        Error::Invalid(format!(
            "`{origin}` is not an origin: write `https://host` or `https://host:port` (no path, no wildcard)"
        ))
    };
    let (scheme, rest) = origin.split_once("://").ok_or_else(refuse)?;
    let (host, port) = match rest.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (rest, None),
    };
    if !host_chars_ok(host) || port.is_some_and(|p| p.parse::<u16>().map_or(true, |p| p == 0)) {
        return Err(refuse());
    }
    let local = host == "localhost" || host == "127.0.0.1";
    match scheme {
        "https" => Ok(origin),
        "http" if local => Ok(origin),
        "http" => Err(Error::Invalid(format!("`{origin}` must use https (plain http only for localhost)"))),
        _ => Err(refuse()),
    }
}

impl Widget {
    /// Checked and normalised (origins lower case, without repeats).
    pub fn checked(self) -> Result<Self> {
        if self.allowed_origins.len() > MAX_ORIGINS {
            return Err(Error::Invalid(format!("`widget.allowed_origins` may list at most {MAX_ORIGINS} origins")));
        }
        let mut allowed_origins = Vec::with_capacity(self.allowed_origins.len());
        for origin in &self.allowed_origins {
            let origin = check_origin(origin)?;
            if !allowed_origins.contains(&origin) {
                allowed_origins.push(origin);
            }
        }
        let greeting = self.greeting.as_deref().map(|g| bounded("widget.greeting", g, 1, 500)).transpose()?;
        Ok(Self { allowed_origins, greeting, position: self.position })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        assert_eq!(check_origin(" https://Shop.Example ").unwrap(), "https://shop.example");
        assert_eq!(check_origin("https://shop.example:8443").unwrap(), "https://shop.example:8443");
        assert_eq!(check_origin("http://localhost:3000").unwrap(), "http://localhost:3000");
        for bad in [
            "shop.example",
            "https://shop.example/",
            "https://shop.example/path",
            "https://*.example",
            "*",
            "http://shop.example",
            "ftp://shop.example",
            "https://",
            "https://shop.example:0",
            "https://shop.example:99999",
            "https://user@shop.example",
        ] {
            assert!(check_origin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn branding() {
        let ok = Branding {
            primary_color: Some("#A0b1C2".into()),
            logo_url: Some("https://cdn.example/logo.png".into()),
            title: Some(" Shop ".into()),
        };
        let ok = ok.checked().unwrap();
        assert_eq!(ok.primary_color.as_deref(), Some("#a0b1c2"));
        assert_eq!(ok.title.as_deref(), Some("Shop"));
        for color in ["red", "#fff", "#gggggg", "a0b1c2", "#a0b1c2ff"] {
            let b = Branding { primary_color: Some(color.into()), ..Branding::default() };
            assert!(b.checked().is_err(), "{color}");
        }
        for url in ["http://cdn.example/x.png", "https://", "https:// x", "javascript:alert(1)", "https://a@b/x"] {
            let b = Branding { logo_url: Some(url.into()), ..Branding::default() };
            assert!(b.checked().is_err(), "{url}");
        }
    }
}
