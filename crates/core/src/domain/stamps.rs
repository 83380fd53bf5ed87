//! Times as the record stores them: fixed-width RFC 3339 strings, which sort as they compare.

/// Now as fixed-width RFC 3339 with milliseconds, so timestamps sort as strings.
pub fn timestamp_now() -> String {
    timestamp(time::OffsetDateTime::now_utc())
}

/// `t` (UTC) as fixed-width RFC 3339 with milliseconds.
pub fn timestamp(t: time::OffsetDateTime) -> String {
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.to_offset(time::UtcOffset::UTC)
        .format(&fmt)
        .unwrap_or_default()
}

pub fn rfc3339(epoch: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(epoch)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}
