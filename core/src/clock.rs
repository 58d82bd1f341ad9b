//! Time as the farm records it: milliseconds since the Unix epoch, rendered as RFC 3339 on the wire.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Milliseconds since the Unix epoch (UTC).
pub type EpochMillis = i64;

/// The wall clock, in milliseconds. Libraries take `now` as an argument; only edges call this.
pub fn now_ms() -> EpochMillis {
    let now = OffsetDateTime::now_utc();
    (now.unix_timestamp_nanos() / 1_000_000) as EpochMillis
}

/// Formats `ms` as RFC 3339 with millisecond precision, e.g. `2026-11-22T10:00:00.123Z`.
pub fn to_rfc3339(ms: EpochMillis) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    match OffsetDateTime::from_unix_timestamp_nanos(nanos) {
        Ok(t) => {
            let t = t
                .replace_nanosecond((ms.rem_euclid(1000) as u32) * 1_000_000)
                .unwrap_or(t);
            t.format(&Rfc3339).unwrap_or_else(|_| ms.to_string())
        }
        Err(_) => ms.to_string(),
    }
}

/// Parses an RFC 3339 timestamp into milliseconds.
pub fn parse_rfc3339(s: &str) -> Option<EpochMillis> {
    let t = OffsetDateTime::parse(s, &Rfc3339).ok()?;
    Some((t.unix_timestamp_nanos() / 1_000_000) as EpochMillis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips_milliseconds() {
        let ms = 1_795_000_000_123;
        let s = to_rfc3339(ms);
        assert!(s.ends_with(".123Z"), "{s}");
        assert_eq!(parse_rfc3339(&s), Some(ms));
    }
}
