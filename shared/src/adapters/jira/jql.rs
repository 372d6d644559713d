//! The JQL casesync sends. JQL reads date literals to the minute and in the searching
//! user's time zone, and has no exact match on text fields; both shape these queries:
//! `since` is converted to the site's zone and floored to the minute (an overlap the
//! caller removes by de-duplicating), and a Google case is found by its label.

use super::config::custom_field_number;
use chrono::{DateTime, Duration, LocalResult, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

/// A JQL string literal: double-quoted, with `"` and `\` escaped.
pub fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// `customfield_10050` → `cf[10050]`, the form JQL accepts for any custom field.
pub fn field_ref(field_id: &str) -> Option<String> {
    custom_field_number(field_id).map(|n| format!("cf[{n}]"))
}

/// The label casesync puts on a case it creates for a Google case (docs/INVARIANTS.md#create-intents-and-the-lookup-lag).
pub fn case_label(google_case_number: &str) -> String {
    format!("gcp-case-{google_case_number}")
}

/// `since` as a JQL date literal (`yyyy-MM-dd HH:mm`) in `tz`, never later than `since`:
/// floored to the minute, and, where a daylight-saving fold makes the local time name two
/// instants, moved back until even the later one is not after `since`. So the query
/// never misses an update; the few extra minutes it returns are removed by the caller.
pub fn since_literal(since: DateTime<Utc>, tz: Tz) -> String {
    let local = since.with_timezone(&tz).naive_local();
    let mut minute = local
        .with_second(0)
        .and_then(|t| t.with_nanosecond(0))
        .unwrap_or(local);
    // A fold lasts at most a few hours; bound the walk anyway.
    for _ in 0..(24 * 60) {
        if latest_instant(tz, minute).is_none_or(|t| t <= since) {
            break;
        }
        minute -= Duration::minutes(1);
    }
    minute.format("%Y-%m-%d %H:%M").to_string()
}

/// The latest instant a local wall-clock time names in `tz` (`None` inside a gap, where
/// Jira would read the time as the instant after the gap, which is after `since` too; the
/// walk then continues).
fn latest_instant(tz: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(_, later) => Some(later.with_timezone(&Utc)),
        LocalResult::None => Some(DateTime::<Utc>::MAX_UTC),
    }
}

/// Flagged cases of the project updated at or after the `since` literal, oldest first.
pub fn updated_since(project_key: &str, flag_ref: &str, flag_value: &str, since: &str) -> String {
    format!(
        "project = {} AND {flag_ref} = {} AND updated >= {} ORDER BY updated ASC, key ASC",
        quote(project_key),
        quote(flag_value),
        quote(since)
    )
}

/// Cases of the project carrying the label, oldest first.
pub fn with_label(project_key: &str, label: &str) -> String {
    format!(
        "project = {} AND labels = {} ORDER BY created ASC, key ASC",
        quote(project_key),
        quote(label)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn since_is_written_in_the_site_zone_floored_to_the_minute() {
        let since = utc("2026-11-29T20:04:59.999Z");
        assert_eq!(since_literal(since, Tz::Europe__Berlin), "2026-11-29 21:04");
        assert_eq!(since_literal(since, Tz::UTC), "2026-11-29 20:04");
        assert_eq!(
            since_literal(since, Tz::America__Los_Angeles),
            "2026-11-29 12:04"
        );
        assert_eq!(since_literal(since, Tz::Asia__Kolkata), "2026-11-30 01:34");
        // Summer time: Berlin is two hours ahead.
        let summer = utc("2026-07-01T00:00:00Z");
        assert_eq!(
            since_literal(summer, Tz::Europe__Berlin),
            "2026-07-01 02:00"
        );
        // Across midnight and a year boundary, west of UTC.
        let new_year = utc("2027-01-01T03:30:10Z");
        assert_eq!(
            since_literal(new_year, Tz::America__New_York),
            "2026-12-31 22:30"
        );
    }

    #[test]
    fn a_daylight_saving_fold_never_makes_the_query_start_late() {
        // Berlin's clocks go back at 03:00 CEST (01:00 UTC) on 2026-10-25: 02:00..03:00
        // local happens twice. 00:30 UTC is 02:30 CEST, the first of the two 02:30s.
        let first = utc("2026-10-25T00:30:00Z");
        let literal = since_literal(first, Tz::Europe__Berlin);
        let local = NaiveDateTime::parse_from_str(&literal, "%Y-%m-%d %H:%M").unwrap();
        let latest = latest_instant(Tz::Europe__Berlin, local).unwrap();
        assert!(
            latest <= first,
            "{literal} may mean {latest}, after {first}"
        );
        assert_eq!(literal, "2026-10-25 01:59");
        // The second 02:30 (CET, 01:30 UTC) is unambiguous from the query's view.
        let second = utc("2026-10-25T01:30:00Z");
        assert_eq!(
            since_literal(second, Tz::Europe__Berlin),
            "2026-10-25 02:30"
        );
    }

    #[test]
    fn the_minute_floor_plus_de_duplication_covers_every_instant_of_a_minute() {
        let tz = Tz::Europe__Berlin;
        for ms in [0, 1, 30_000, 59_999] {
            let since = utc("2026-03-01T10:15:00Z") + Duration::milliseconds(ms);
            let literal = since_literal(since, tz);
            let local = NaiveDateTime::parse_from_str(&literal, "%Y-%m-%d %H:%M").unwrap();
            let start = latest_instant(tz, local).unwrap();
            assert!(start <= since && since - start < Duration::minutes(1));
        }
    }

    #[test]
    fn queries_quote_their_values() {
        assert_eq!(quote(r#"a "b" \c"#), r#""a \"b\" \\c""#);
        assert_eq!(field_ref("customfield_10050").as_deref(), Some("cf[10050]"));
        assert_eq!(field_ref("labels"), None);
        assert_eq!(
            updated_since("SUP", "cf[10050]", "Yes", "2026-11-29 21:04"),
            r#"project = "SUP" AND cf[10050] = "Yes" AND updated >= "2026-11-29 21:04" ORDER BY updated ASC, key ASC"#
        );
        assert_eq!(
            with_label("SUP", &case_label("12345")),
            r#"project = "SUP" AND labels = "gcp-case-12345" ORDER BY created ASC, key ASC"#
        );
    }
}
