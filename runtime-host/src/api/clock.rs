//! Wall-clock formatting for API bodies, without a date-time dependency.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now as Langflow prints message timestamps: `2026-11-25 19:42:39.174283 UTC`.
pub fn langflow_timestamp() -> String {
    let (days, secs, micros) = now_parts();
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{micros:06} UTC", secs / 3600, secs / 60 % 60, secs % 60)
}

/// Now in ISO 8601 as Langflow's v2 API answers: `2026-11-25T19:42:52.356244+00:00`.
pub fn iso_timestamp() -> String {
    let (days, secs, micros) = now_parts();
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}+00:00", secs / 3600, secs / 60 % 60, secs % 60)
}

/// Now as Langflow prefixes uploaded file names: `2026-11-25_19-42-39` (UTC).
pub fn file_timestamp() -> String {
    let (days, secs, _) = now_parts();
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}_{:02}-{:02}-{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

/// Seconds since the Unix epoch.
pub fn unix_seconds() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Milliseconds since the Unix epoch.
pub fn unix_millis() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The month as `year * 12 + month`, for monthly quotas.
pub fn month_index() -> u32 {
    let (y, m) = year_month();
    index(y, m)
}

/// This month as `YYYY-MM` (UTC), with its [`month_index`].
pub fn month() -> (String, u32) {
    let (y, m) = year_month();
    (format!("{y:04}-{m:02}"), index(y, m))
}

/// Seconds from now until the next month starts (UTC), when monthly
/// quotas start over: what a quota refusal's `Retry-After` says.
pub fn seconds_to_next_month() -> u64 {
    let (days, secs, _) = now_parts();
    until_next_month(days, secs)
}

fn until_next_month(days: i64, secs: u64) -> u64 {
    let (y, m, _) = civil_from_days(days);
    let (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    let start = days_from_civil(y, m, 1) * 86_400;
    u64::try_from(start - days * 86_400).unwrap_or(0).saturating_sub(secs).max(1)
}

fn year_month() -> (i64, u32) {
    let (days, _, _) = now_parts();
    let (y, m, _) = civil_from_days(days);
    (y, m)
}

fn index(year: i64, month: u32) -> u32 {
    u32::try_from(year * 12 + i64::from(month)).unwrap_or(0)
}

fn now_parts() -> (i64, u64, u32) {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    (i64::try_from(secs / 86_400).unwrap_or(0), secs % 86_400, d.subsec_micros())
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Howard Hinnant's civil-to-days algorithm, the inverse of
/// [`civil_from_days`].
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_417), (2025, 11, 25));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert!(langflow_timestamp().ends_with(" UTC"));
        for days in [0, 11_016, 20_417, 20_453] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn next_month_starts() {
        // 2025-11-25 00:00:10 UTC: six days, less ten seconds, to December.
        assert_eq!(until_next_month(20_417, 10), 6 * 86_400 - 10);
        // 2025-12-31 23:59:59 UTC: one second to the new year.
        assert_eq!(until_next_month(20_453, 86_399), 1);
        // 2000-02-29, a leap day: March is a day away.
        assert_eq!(until_next_month(11_016, 0), 86_400);
    }
}
