//! The TicketSQL casesync sends. RT stores times to the whole second and reads date
//! literals in the searching user's time zone, and answers a malformed query with 200 and
//! no tickets (a trap: a typo looks like "nothing changed"), so every query is built here,
//! from quoted parts, and tested.

use chrono::{DateTime, Duration, LocalResult, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

/// A TicketSQL string literal: single-quoted, with `'` and `\` escaped.
pub fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        if matches!(c, '\'' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// `CF.{Name}`; the name was checked at configuration to hold no brace.
pub fn cf(name: &str) -> String {
    format!("CF.{{{name}}}")
}

/// `since` as a TicketSQL date literal (`YYYY-MM-DD HH:MM:SS`) in `tz`, never later than
/// `since`: floored to RT's whole seconds, and, where a daylight-saving fold makes the
/// local time name two instants, moved back until even the later one is not after
/// `since`. The query so overlaps the previous one by up to a second (more in a fold);
/// the caller removes duplicates.
pub fn since_literal(since: DateTime<Utc>, tz: Tz) -> String {
    let local = since.with_timezone(&tz).naive_local();
    let mut second = local.with_nanosecond(0).unwrap_or(local);
    // A fold lasts at most a few hours; bound the walk anyway (in steps of a minute once
    // the first minute did not do).
    for i in 0..(24 * 60 + 60) {
        if latest_instant(tz, second).is_none_or(|t| t <= since) {
            break;
        }
        second -= if i < 60 {
            Duration::seconds(1)
        } else {
            Duration::minutes(1)
        };
    }
    second.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// The latest instant a local wall-clock time names in `tz` (a time inside a gap names
/// none; RT reads it as after the gap, so after `since` too, and the walk goes on).
fn latest_instant(tz: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(_, later) => Some(later.with_timezone(&Utc)),
        LocalResult::None => Some(DateTime::<Utc>::MAX_UTC),
    }
}

/// Flagged tickets of the queue updated at or after the `since` literal.
pub fn updated_since(queue: &str, flag_field: &str, flag_value: &str, since: &str) -> String {
    format!(
        "Queue = {} AND {} = {} AND LastUpdated >= {}",
        quote(queue),
        cf(flag_field),
        quote(flag_value),
        quote(since)
    )
}

/// Tickets whose Google-name field contains `cases/{number}`: TicketSQL's `LIKE` is a
/// substring match, and one case has several names (`projects/…`, `organizations/…`), so
/// the caller checks each hit for the exact case.
pub fn naming_google_case(case_field: &str, case_number: &str) -> String {
    format!(
        "{} LIKE {}",
        cf(case_field),
        quote(&format!("cases/{case_number}"))
    )
}

/// The TransactionSQL for a ticket's transactions of the given types.
pub fn ticket_transactions(ticket_id: u64, types: &[&str]) -> String {
    let types: Vec<String> = types
        .iter()
        .map(|t| format!("Type = {}", quote(t)))
        .collect();
    format!(
        "ObjectType = 'RT::Ticket' AND ObjectId = {ticket_id} AND ({})",
        types.join(" OR ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn literals_are_quoted_and_escaped() {
        assert_eq!(quote("GoogleSupport"), "'GoogleSupport'");
        assert_eq!(quote("it's"), r"'it\'s'");
        assert_eq!(quote(r"a\b"), r"'a\\b'");
        assert_eq!(cf("SyncWithGoogle"), "CF.{SyncWithGoogle}");
    }

    #[test]
    fn the_search_query_has_queue_flag_and_time() {
        assert_eq!(
            updated_since(
                "Google Support",
                "SyncWithGoogle",
                "true",
                "2026-11-29 20:04:59"
            ),
            "Queue = 'Google Support' AND CF.{SyncWithGoogle} = 'true' AND LastUpdated >= '2026-11-29 20:04:59'"
        );
        assert_eq!(
            naming_google_case("GoogleCaseName", "123"),
            "CF.{GoogleCaseName} LIKE 'cases/123'"
        );
        assert_eq!(
            ticket_transactions(7, &["Comment", "Correspond"]),
            "ObjectType = 'RT::Ticket' AND ObjectId = 7 AND (Type = 'Comment' OR Type = 'Correspond')"
        );
    }

    #[test]
    fn since_is_floored_to_the_second_in_the_zone() {
        let since = utc("2026-11-29T20:04:59.999Z");
        assert_eq!(since_literal(since, chrono_tz::UTC), "2026-11-29 20:04:59");
        assert_eq!(
            since_literal(since, chrono_tz::Europe::Berlin),
            "2026-11-29 21:04:59"
        );
        assert_eq!(
            since_literal(utc("2026-11-29T20:05:00Z"), chrono_tz::UTC),
            "2026-11-29 20:05:00"
        );
    }

    #[test]
    fn in_a_fold_the_literal_names_no_instant_after_since() {
        // 2026-10-25 02:30 happens twice in Berlin; since is the first time.
        let since = utc("2026-10-25T00:30:00Z");
        let literal = since_literal(since, chrono_tz::Europe::Berlin);
        let local = NaiveDateTime::parse_from_str(&literal, "%Y-%m-%d %H:%M:%S").unwrap();
        let latest = latest_instant(chrono_tz::Europe::Berlin, local).unwrap();
        assert!(
            latest <= since,
            "{literal} may mean {latest}, after {since}"
        );
        assert!(
            since - latest <= Duration::hours(1) + Duration::minutes(1),
            "{literal}"
        );
    }
}
