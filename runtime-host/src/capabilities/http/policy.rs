//! The egress policy: which URLs a run may reach, and at which addresses.
//!
//! What it defends against: a seller's flow (or a model steered by a
//! buyer's prompt) using the host as a proxy into the operator's own
//! network (server-side request forgery): cloud metadata at
//! `169.254.169.254`, admin ports on loopback, databases on private
//! addresses. A URL passes when
//! 1. its scheme is `http` or `https` and it carries no user information
//!    (`http://user:pass@host` hides the real host from a careless reader
//!    and smuggles credentials);
//! 2. its host and port match an entry of the operator's allow-list;
//! 3. every address its name resolves to is public, unless the entry that
//!    admitted it is an IP literal (the operator named that very address)
//!    or the operator allows private networks.
//!
//! The addresses checked are the addresses connected to ([`Target::addrs`]
//! pins them), so a name that resolves to a public address for the check
//! and to a private one a moment later (DNS rebinding) gains nothing.

use crate::bindings::node::sandflow::host::types::CapabilityError;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

/// One entry of the allow-list: `example.com`, `*.example.com` (its
/// subdomains, not itself), an IP address (`10.0.0.7`, `[fd00::1]`) or `*`
/// (any host with a public address), each optionally with `:port` (any
/// port without one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    host: HostMatch,
    port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostMatch {
    Any,
    Name(String),
    Subdomains(String),
    Ip(IpAddr),
}

impl FromStr for HostPattern {
    type Err = String;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let usage = "an allowed host is NAME, *.NAME, an IP address or *, optionally with :PORT \
                     (e.g. example.com, *.example.com:443, 127.0.0.1:8080, [::1]:8080)";
        let spec = spec.trim().to_ascii_lowercase();
        if spec.contains("://") || spec.contains('/') || spec.contains('@') {
            return Err(format!("`{spec}` is not a host: give the host, not a URL; {usage}"));
        }
        let (host, port) = split_port(&spec).ok_or_else(|| format!("`{spec}`: {usage}"))?;
        let port = match port {
            Some(p) => {
                Some(p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| format!("`{spec}`: bad port; {usage}"))?)
            }
            None => None,
        };
        let host = if host == "*" {
            HostMatch::Any
        } else if let Some(domain) = host.strip_prefix("*.") {
            HostMatch::Subdomains(domain_name(domain).ok_or_else(|| format!("`{spec}`: {usage}"))?)
        } else if let Ok(ip) = host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
            HostMatch::Ip(ip)
        } else {
            HostMatch::Name(domain_name(host).ok_or_else(|| format!("`{spec}`: {usage}"))?)
        };
        Ok(Self { host, port })
    }
}

impl HostPattern {
    /// The port it names, if any.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// Whether `url`'s host and port are this pattern's (nothing about
    /// where the name resolves: that is [`Policy::admit`]'s business).
    pub fn matches(&self, url: &reqwest::Url) -> bool {
        self.admission(&host_of(url), url.port_or_known_default().unwrap_or(0), literal_ip(url)).is_some()
    }

    /// How this pattern admits `host` at `port` (`ip`: the host as an IP
    /// literal), if it does.
    fn admission(&self, host: &str, port: u16, ip: Option<IpAddr>) -> Option<Admission> {
        if self.port.is_some_and(|allowed| allowed != port) {
            return None;
        }
        match (&self.host, ip) {
            (HostMatch::Ip(allowed), Some(ip)) if *allowed == ip => Some(Admission::Explicit),
            (HostMatch::Any, _) => Some(Admission::Name),
            (HostMatch::Name(name), None) if name == host => Some(Admission::Name),
            (HostMatch::Subdomains(domain), None)
                if host.len() > domain.len() + 1
                    && host.ends_with(domain.as_str())
                    && host.as_bytes()[host.len() - domain.len() - 1] == b'.' =>
            {
                Some(Admission::Name)
            }
            _ => None,
        }
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            HostMatch::Any => f.write_str("*")?,
            HostMatch::Name(name) => f.write_str(name)?,
            HostMatch::Subdomains(domain) => write!(f, "*.{domain}")?,
            HostMatch::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]")?,
            HostMatch::Ip(ip) => write!(f, "{ip}")?,
        }
        match self.port {
            Some(port) => write!(f, ":{port}"),
            None => Ok(()),
        }
    }
}

/// `host[:port]` or `[v6][:port]`.
fn split_port(spec: &str) -> Option<(&str, Option<&str>)> {
    if let Some(rest) = spec.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        return Some((&spec[..ip.len() + 2], port));
    }
    match spec.rsplit_once(':') {
        // A bare IPv6 address has several colons and no port.
        Some((host, _)) if host.contains(':') => Some((spec, None)),
        Some((host, port)) => Some((host, Some(port))),
        None => Some((spec, None)),
    }
}

/// A lower-case DNS name of letters, digits, `-` and `.` (IDNs in their
/// `xn--` form), without a trailing dot.
fn domain_name(name: &str) -> Option<String> {
    let name = name.trim_end_matches('.');
    let valid = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
        });
    valid.then(|| name.to_owned())
}

/// What admitted a URL, and so whether private addresses may be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// A name or wildcard entry: its addresses must be public unless the
    /// operator allows private networks.
    Name,
    /// An IP literal entry, or the operator's own endpoint (the web search
    /// provider): reached at whatever address it names.
    Explicit,
}

/// A URL that passed the policy: where to connect.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// The URL's host as written in it (the `Host` header and the key the
    /// connection is pinned under).
    pub host: String,
    /// Whether `host` is a name (else an IP literal, connected to as is).
    pub is_name: bool,
    /// The checked addresses: the only ones connected to.
    pub addrs: Vec<SocketAddr>,
}

/// The allow-list and the private-network switch of one host.
#[derive(Debug, Clone, Default)]
pub(crate) struct Policy<'a> {
    pub allow: &'a [HostPattern],
    pub allow_private: bool,
}

impl Policy<'_> {
    /// Checks scheme, user information and the allow-list: everything that
    /// needs no name lookup.
    pub fn admit(&self, url: &reqwest::Url) -> Result<Admission, CapabilityError> {
        check_shape(url)?;
        let host = host_of(url);
        let port = url.port_or_known_default().unwrap_or(0);
        let ip = literal_ip(url);
        let matched = self.allow.iter().find_map(|p| p.admission(&host, port, ip));
        matched.ok_or_else(|| {
            let shown = if port == default_port(url) { host.clone() } else { format!("{host}:{port}") };
            CapabilityError::Denied(format!(
                "`{shown}` is not on this host's egress allow-list (requested {}); the operator allows it with \
                 --http-allow {shown}",
                redacted(url)
            ))
        })
    }

    /// Resolves the URL's host and checks every address: the [`Target`] to
    /// connect to, or why not.
    pub async fn resolve(
        &self,
        url: &reqwest::Url,
        admission: Admission,
        caller: super::lookup::Caller<'_>,
    ) -> Result<Target, CapabilityError> {
        let host = url.host_str().unwrap_or_default().to_owned();
        let port = url.port_or_known_default().unwrap_or(0);
        let (addrs, is_name) = match literal_ip(url) {
            Some(ip) => (vec![SocketAddr::new(ip, port)], false),
            None => {
                let name = host.trim_end_matches('.').to_owned();
                (super::lookup::lookup(caller, &name, port).await?, true)
            }
        };
        if addrs.is_empty() {
            return Err(CapabilityError::Failed(format!("`{host}` has no address")));
        }
        if admission == Admission::Name && !self.allow_private {
            for addr in &addrs {
                if let Some(kind) = non_public(addr.ip()) {
                    // The address is the operator's to see, not the guest's:
                    // answers of the host's resolver map its network.
                    tracing::warn!(host = %host, address = %addr.ip(), kind, "a flow's request resolves to a non-public address");
                    return Err(CapabilityError::Denied(format!(
                        "`{host}` resolves to a {kind} address, which this host does not reach for flows; the \
                         operator allows that address alone with --http-allow ADDRESS:{port} (the host's log names \
                         it) or all such with --http-allow-private",
                    )));
                }
            }
        }
        Ok(Target { host, is_name, addrs })
    }
}

/// Scheme and user information, which no allow-list entry can excuse.
pub(crate) fn check_shape(url: &reqwest::Url) -> Result<(), CapabilityError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(CapabilityError::Denied(format!(
            "`{}:` URLs are not fetched; only http and https are",
            url.scheme()
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(CapabilityError::Denied(format!(
            "URLs with user information (`user@host`) are refused: {}; send credentials in a header",
            redacted(url)
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(CapabilityError::Invalid(format!("`{url}` has no host")));
    }
    Ok(())
}

/// The host of a URL as matched against the allow-list: lower case,
/// without a trailing dot, IPv6 without brackets.
fn host_of(url: &reqwest::Url) -> String {
    url.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']').trim_end_matches('.').to_owned()
}

/// The URL's host when it is an IP literal (the URL parser has already
/// turned `2130706433`, `0x7f.1` and friends into dotted form).
fn literal_ip(url: &reqwest::Url) -> Option<IpAddr> {
    url.host_str()?.trim_start_matches('[').trim_end_matches(']').parse().ok()
}

fn default_port(url: &reqwest::Url) -> u16 {
    if url.scheme() == "https" { 443 } else { 80 }
}

/// The URL without user information or query, for messages and logs.
pub(crate) fn redacted(url: &reqwest::Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

/// Why `ip` is not a public address, if it is not one.
pub fn non_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => non_public_v4(v4),
        IpAddr::V6(v6) => non_public_v6(v6),
    }
}

fn non_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        _ if ip.is_unspecified() || a == 0 => "unspecified",
        _ if ip.is_loopback() => "loopback",
        _ if ip.is_private() => "private",
        _ if ip.is_link_local() => "link-local",
        (100, 64..=127, _) => "shared (carrier-grade NAT)",
        (192, 0, 0) => "reserved (IETF protocol)",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation",
        (198, 18..=19, _) => "benchmarking",
        _ if ip.is_broadcast() => "broadcast",
        _ if ip.is_multicast() => "multicast",
        (240..=255, _, _) => "reserved",
        _ => return None,
    })
}

fn non_public_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let segments = ip.segments();
    let embedded_v4 = |high: u16, low: u16| Ipv4Addr::from((u32::from(high) << 16) | u32::from(low));
    Some(match segments {
        _ if ip.is_unspecified() => "unspecified",
        _ if ip.is_loopback() => "loopback",
        // IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible (::a.b.c.d): the IPv4 address decides.
        [0, 0, 0, 0, 0, 0xffff, high, low] | [0, 0, 0, 0, 0, 0, high, low] => {
            return non_public_v4(embedded_v4(high, low));
        }
        // NAT64 (64:ff9b::a.b.c.d) reaches the IPv4 address it embeds.
        [0x64, 0xff9b, 0, 0, 0, 0, high, low] => return non_public_v4(embedded_v4(high, low)),
        // The local-use NAT64 prefix (64:ff9b:1::/48, RFC 8215) puts the
        // IPv4 address where its operator's prefix length says.
        [0x64, 0xff9b, 1, ..] => "translated (local-use NAT64)",
        // 6to4 (2002:a.b.c.d::/48) embeds an IPv4 address too.
        [0x2002, high, low, ..] => return non_public_v4(embedded_v4(high, low)),
        [first, ..] if first & 0xffc0 == 0xfe80 => "link-local",
        [first, ..] if first & 0xffc0 == 0xfec0 => "site-local",
        [first, ..] if first & 0xfe00 == 0xfc00 => "private (unique local)",
        [first, ..] if first & 0xff00 == 0xff00 => "multicast",
        [0x2001, 0xdb8, ..] => "documentation",
        // Teredo tunnels hide the IPv4 address they lead to.
        [0x2001, 0, ..] => "tunnelled (Teredo)",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> reqwest::Url {
        reqwest::Url::parse(text).expect("a URL")
    }

    fn patterns(specs: &[&str]) -> Vec<HostPattern> {
        specs.iter().map(|s| s.parse().expect("valid pattern")).collect()
    }

    #[test]
    fn parses_patterns() {
        for (spec, shown) in [
            ("Example.com", "example.com"),
            ("*.example.com:443", "*.example.com:443"),
            ("127.0.0.1:8080", "127.0.0.1:8080"),
            ("[::1]:8080", "[::1]:8080"),
            ("::1", "[::1]"),
            ("*", "*"),
            ("example.com.", "example.com"),
        ] {
            let pattern: HostPattern = spec.parse().unwrap_or_else(|e| panic!("{spec}: {e}"));
            assert_eq!(pattern.to_string(), shown);
        }
        for bad in [
            "http://example.com",
            "example.com/path",
            "user@example.com",
            "ex ample.com",
            "a.com:0",
            "a.com:x",
            "*.",
            "",
        ] {
            assert!(bad.parse::<HostPattern>().is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn matches_names_subdomains_ports_and_literals() {
        let allow = patterns(&["example.com", "*.docs.example.org", "127.0.0.1:8080", "api.example.net:8443"]);
        let policy = Policy { allow: &allow, allow_private: false };
        assert_eq!(policy.admit(&url("https://example.com/x")).ok(), Some(Admission::Name));
        assert_eq!(policy.admit(&url("http://EXAMPLE.com:81/x")).ok(), Some(Admission::Name));
        assert_eq!(policy.admit(&url("http://a.b.docs.example.org/")).ok(), Some(Admission::Name));
        assert!(policy.admit(&url("http://docs.example.org/")).is_err(), "*.x is the subdomains only");
        assert!(policy.admit(&url("http://evildocs.example.org/")).is_err());
        assert!(policy.admit(&url("http://example.com.evil.net/")).is_err());
        assert!(policy.admit(&url("http://notexample.com/")).is_err());
        assert_eq!(policy.admit(&url("http://127.0.0.1:8080/")).ok(), Some(Admission::Explicit));
        assert!(policy.admit(&url("http://127.0.0.1:8081/")).is_err(), "another port");
        assert!(policy.admit(&url("http://api.example.net/")).is_err(), "the default port is not 8443");
        assert!(policy.admit(&url("http://api.example.net:8443/")).is_ok());
    }

    #[test]
    fn refuses_hostile_urls_with_reasons() {
        let allow = patterns(&["*", "127.0.0.1"]);
        let policy = Policy { allow: &allow, allow_private: false };
        let denied = |u: &str| match policy.admit(&url(u)) {
            Err(CapabilityError::Denied(m)) => m,
            other => panic!("{u}: expected a denial, got {other:?}"),
        };
        assert!(denied("file:///etc/passwd").contains("`file:` URLs are not fetched"));
        assert!(denied("gopher://example.com/").contains("only http and https"));
        let message = denied("http://user:secret@example.com/");
        assert!(message.contains("user information") && !message.contains("secret"), "{message}");
        assert!(denied("http://user@example.com/").contains("user information"));
        // The parser normalises numeric hosts, so they meet the IP checks.
        assert_eq!(literal_ip(&url("http://2130706433/")), Some(IpAddr::from([127, 0, 0, 1])));
        assert_eq!(literal_ip(&url("http://0x7f.1/")), Some(IpAddr::from([127, 0, 0, 1])));
    }

    #[test]
    fn a_name_off_the_list_says_how_to_allow_it() {
        let allow = patterns(&["example.com"]);
        let policy = Policy { allow: &allow, allow_private: false };
        let Err(CapabilityError::Denied(message)) = policy.admit(&url("http://evil.test:8080/a?token=x")) else {
            panic!("denied")
        };
        assert!(message.contains("`evil.test:8080` is not on this host's egress allow-list"), "{message}");
        assert!(message.contains("--http-allow evil.test:8080"), "{message}");
        assert!(!message.contains("token"), "queries stay out of messages: {message}");
    }

    #[test]
    fn classifies_addresses() {
        for (ip, kind) in [
            ("127.0.0.1", "loopback"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "link-local"),
            ("0.0.0.0", "unspecified"),
            ("100.64.0.1", "shared (carrier-grade NAT)"),
            ("224.0.0.1", "multicast"),
            ("255.255.255.255", "broadcast"),
            ("::1", "loopback"),
            ("::", "unspecified"),
            ("fe80::1", "link-local"),
            ("fd00::1", "private (unique local)"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:169.254.169.254", "link-local"),
            ("64:ff9b::a00:1", "private"),
            ("64:ff9b:1::a00:1", "translated (local-use NAT64)"),
            ("64:ff9b:1:7f00::1", "translated (local-use NAT64)"),
            ("2002:c0a8:101::1", "private"),
        ] {
            let ip: IpAddr = ip.parse().expect("an address");
            assert_eq!(non_public(ip), Some(kind), "{ip}");
        }
        for ip in ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8"] {
            assert_eq!(non_public(ip.parse().expect("an address")), None, "{ip}");
        }
    }

    #[tokio::test]
    async fn names_resolving_to_private_addresses_are_refused() {
        let allow = patterns(&["localhost"]);
        let policy = Policy { allow: &allow, allow_private: false };
        let target = url("http://localhost:9/");
        let admission = policy.admit(&target).expect("on the list");
        let caller = super::super::lookup::Caller { tenant: "policy-test", flow: None };
        let Err(CapabilityError::Denied(message)) = policy.resolve(&target, admission, caller).await else {
            panic!("localhost is loopback")
        };
        assert!(message.contains("loopback") && message.contains("--http-allow-private"), "{message}");
        // What the host's resolver answered stays in the host's log.
        assert!(!message.contains("127.0.0.1") && !message.contains("::1"), "{message}");
        let open = Policy { allow: &allow, allow_private: true };
        let resolved = open.resolve(&target, admission, caller).await.expect("private allowed");
        assert!(resolved.is_name && resolved.addrs.iter().all(|a| a.ip().is_loopback()));
    }
}
