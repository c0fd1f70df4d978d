//! `sandflow:host/calendar`: the date and time in a time zone, for the
//! nodes that answer with it (Current Date, the Agent's `get_current_date`
//! tool). Guests have no clock of their own (WASI's clocks read zero, see
//! `sandbox.rs`), so the date reaches them as a capability like any other.
//!
//! Zones come from the system's tz database (`/usr/share/zoneinfo`), looked
//! up by name; a name is checked before it is looked up, so a guest cannot
//! make the host read a path of its choosing.

use crate::bindings::node::sandflow::host::calendar::Host;
use crate::bindings::node::sandflow::host::types::CapabilityError;
use crate::sandbox::RunState;
use jiff::Timestamp;
use jiff::tz::TimeZone;

/// Longest time zone name taken (IANA's longest is 32 bytes).
pub const MAX_ZONE_BYTES: usize = 64;

/// Where the host reads the time.
#[derive(Debug, Clone, Copy, Default)]
pub enum Calendar {
    /// The system clock.
    #[default]
    System,
    /// A fixed instant, for tests and reproducible runs.
    Fixed(Timestamp),
}

impl Calendar {
    /// A calendar fixed at `instant` (RFC 3339, `2026-11-26T14:02:21Z`).
    pub fn fixed(instant: &str) -> Result<Calendar, String> {
        instant.parse().map(Calendar::Fixed).map_err(|e| format!("`{instant}` is not an RFC 3339 instant: {e}"))
    }

    fn now(self) -> Timestamp {
        match self {
            Calendar::System => Timestamp::now(),
            Calendar::Fixed(at) => at,
        }
    }

    /// The date and time in `timezone`, as Langflow's Current Date formats it
    /// (`strftime("%Y-%m-%d %H:%M:%S %Z")`), or Python's `ZoneInfo` error text
    /// for a zone that does not exist.
    pub fn format(self, timezone: &str) -> Result<String, String> {
        let unknown = || format!("No time zone found with key {timezone}");
        if !plausible_zone(timezone) {
            return Err(unknown());
        }
        let zone = TimeZone::get(timezone).map_err(|_| unknown())?;
        Ok(self.now().to_zoned(zone).strftime("%Y-%m-%d %H:%M:%S %Z").to_string())
    }
}

/// IANA names are ASCII words joined by `/`: no empty, `.` or `..` part,
/// nothing that could name a file outside the database.
fn plausible_zone(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_ZONE_BYTES
        && name.split('/').all(|part| {
            !part.is_empty()
                && !part.starts_with('.')
                && part.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'+'))
        })
}

impl Host for RunState {
    fn now(&mut self, timezone: String) -> Result<String, CapabilityError> {
        let _span = tracing::debug_span!("runtime_host.calendar", timezone = %timezone.escape_debug()).entered();
        self.caps.config.calendar.format(&timezone).map_err(CapabilityError::Invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Calendar {
        Calendar::fixed(s).unwrap()
    }

    #[test]
    fn formats_as_python_strftime_in_the_zone() {
        let c = at("2026-11-26T14:02:21Z");
        assert_eq!(c.format("UTC").unwrap(), "2026-11-26 14:02:21 UTC");
        assert_eq!(c.format("Europe/Paris").unwrap(), "2026-11-26 15:02:21 CET");
        assert_eq!(at("2026-07-01T00:30:00Z").format("America/New_York").unwrap(), "2026-06-30 20:30:00 EDT");
    }

    #[test]
    fn unknown_and_hostile_names_are_refused_with_langflows_text() {
        let c = at("2026-11-26T14:02:21Z");
        assert_eq!(c.format("Nowhere/None").unwrap_err(), "No time zone found with key Nowhere/None");
        for name in
            ["", "../../etc/passwd", "/etc/localtime", "Europe//Paris", "Europe/./Paris", "a\0b", "posixrules/.."]
        {
            assert!(c.format(name).is_err(), "{name:?} was accepted");
        }
        assert!(c.format(&"A".repeat(MAX_ZONE_BYTES + 1)).is_err());
    }

    #[test]
    fn a_fixed_instant_must_be_rfc_3339() {
        assert!(Calendar::fixed("yesterday").unwrap_err().contains("not an RFC 3339 instant"));
    }

    #[test]
    fn the_system_clock_is_read_when_nothing_is_fixed() {
        let year: i32 = Calendar::System.format("UTC").unwrap()[..4].parse().unwrap();
        assert!(year >= 2024, "{year}");
    }
}
