//! Property tests (`proptest`): whatever text arrives — a case name from an API, a CRM id, a
//! comment body, a description, a duration in the configuration — the parsers answer
//! without panicking, and what casesync's builders write reads back as written.

use super::Side;
use super::keys::{CompanyCaseKey, GoogleCaseKey};
use super::markers::{self, MAX_COMMENT_CHARS, MarkedKind};
use crate::config::{Config, DurationRange, env_name};
use proptest::prelude::*;
use std::time::Duration;

fn side() -> impl Strategy<Value = Side> {
    prop_oneof![Just(Side::Google), Just(Side::Company)]
}

fn kind() -> impl Strategy<Value = MarkedKind> {
    prop_oneof![Just(MarkedKind::Comment), Just(MarkedKind::Attachment)]
}

/// Text that looks like a marker, so the parser's deeper paths (part numbers too large for
/// `usize`, part 0, i > k) are reached, not only its first refusal.
fn marker_like() -> impl Strategy<Value = String> {
    "\\[(Google|Company|google) (Comment|Attachment) [^\\]\\n]{0,12} by [^\\n]{0,12}\\]( \\(part [0-9]{1,25}/[0-9]{1,25}\\))?[\\r\\n]?.{0,12}"
}

/// A string of up to `max` arbitrary characters.
fn long_text(max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<char>(), 0..max).prop_map(|c| c.into_iter().collect())
}

const CLASSES: [DurationRange; 5] = [
    DurationRange::POLLING_WINDOW,
    DurationRange::AGE,
    DurationRange::LAG,
    DurationRange::LEASE,
    DurationRange::SCHEDULE,
];

/// Every duration key of the configuration.
fn duration_keys() -> Vec<&'static str> {
    Config::from_table(toml::Table::new())
        .map(|c| c.durations().into_iter().map(|(key, _, _)| key).collect())
        .unwrap_or_default()
}

proptest! {
    #[test]
    fn google_case_keys_never_panic_and_are_case_numbers(name in any::<String>()) {
        if let Ok(key) = GoogleCaseKey::from_case_name(&name) {
            prop_assert!(!key.as_str().is_empty());
            prop_assert!(key.as_str().chars().all(|c| c.is_ascii_alphanumeric()));
            prop_assert!(name.ends_with(key.as_str()));
            prop_assert_eq!(GoogleCaseKey::from_case_name(key.as_str()).ok(), Some(key));
        }
    }

    #[test]
    fn a_case_is_keyed_by_its_number_under_any_parent(
        parent in "(projects|organizations)/[a-z0-9-]{1,30}",
        number in "[A-Za-z0-9]{1,20}",
    ) {
        let name = format!("{parent}/cases/{number}");
        let key = GoogleCaseKey::from_case_name(&name);
        prop_assert_eq!(key.ok().map(|k| k.as_str().to_string()), Some(number));
    }

    #[test]
    fn company_case_keys_never_panic_and_are_clean(id in any::<String>()) {
        if let Ok(key) = CompanyCaseKey::new(&id) {
            let k = key.as_str();
            prop_assert!(!k.is_empty() && k.len() <= 200);
            prop_assert!(!k.chars().any(char::is_control));
            prop_assert_eq!(k, k.trim());
            prop_assert_eq!(CompanyCaseKey::new(k).ok(), Some(key.clone()));
        }
    }

    #[test]
    fn company_case_keys_of_any_length_never_panic(id in long_text(1000)) {
        let accepted = CompanyCaseKey::new(&id).is_ok();
        prop_assert!(!accepted || id.trim().len() <= 200);
    }

    #[test]
    fn the_text_parsers_never_panic(body in any::<String>()) {
        let _ = markers::parse_marker(&body);
        let _ = markers::parse_description_line(&body);
        let _ = markers::parse_now_syncing(&body);
    }

    #[test]
    fn marker_like_text_never_panics_and_parts_are_sane(body in marker_like()) {
        if let Some(m) = markers::parse_marker(&body) {
            let (i, k) = m.part;
            prop_assert!(1 <= i && i <= k, "{:?}", m.part);
            prop_assert!(!m.source_id.is_empty());
        }
    }

    #[test]
    fn a_marker_line_reads_back_as_written(
        source in side(),
        kind in kind(),
        id in "[^\\s\\[\\]]{1,40}",
        author in any::<String>(),
        body in any::<String>(),
    ) {
        let line = markers::marker_line(source, kind, &id, &author);
        prop_assert!(!line.contains('\n'));
        let m = markers::parse_marker(&format!("{line}\n{body}")).unwrap();
        prop_assert_eq!(m.source, source);
        prop_assert_eq!(m.kind, kind);
        prop_assert_eq!(m.source_id, id);
        prop_assert_eq!(m.author, markers::marker_name(&author));
        prop_assert_eq!(m.part, (1, 1));
    }

    #[test]
    fn description_and_now_syncing_lines_read_back(
        crm in "[a-z]{1,10}",
        id in "[^\\s]{1,40}",
        before in any::<String>(),
    ) {
        let description = format!("{before}\n\n{}", markers::description_line(&crm, &id));
        prop_assert_eq!(
            markers::parse_description_line(&description),
            Some((crm.clone(), id.clone()))
        );
        let comment = markers::now_syncing_comment(&id);
        prop_assert_eq!(markers::parse_now_syncing(&comment), Some(id.as_str()));
    }

    #[test]
    fn duration_validation_never_panics_and_accepts_exactly_its_range(
        secs in prop_oneof![any::<u64>(), 0u64..400_000_000],
        nanos in 0u32..1_000_000_000,
    ) {
        let d = Duration::new(secs, nanos);
        let now = chrono::Utc::now();
        for range in CLASSES {
            let checked = range.check("sync.some_key", d);
            prop_assert_eq!(checked.is_ok(), range.min <= d && d <= range.max);
            match checked {
                Ok(()) => {
                    // What passes is safe for the engine's date arithmetic.
                    let c = chrono::Duration::from_std(d).unwrap();
                    prop_assert!(now.checked_sub_signed(c + c).is_some());
                    prop_assert!(now.checked_add_signed(c + c).is_some());
                }
                Err(e) => {
                    prop_assert_eq!(e.key.as_str(), "sync.some_key");
                    prop_assert!(e.problem.contains("must be between"), "{}", e);
                }
            }
        }
    }

    #[test]
    fn any_duration_text_for_any_key_is_refused_with_its_key_or_safe(
        key in proptest::sample::select(duration_keys()),
        text in prop_oneof![
            any::<String>(),
            "[0-9]{1,25} ?(ns|us|ms|s|m|h|d|w|M|y|years|days)( [0-9]{1,20}(s|m|h|d|y))?",
        ],
    ) {
        let env = vec![(env_name(key), text.clone())];
        match Config::load(None, env) {
            Ok(config) => {
                let s = config.sync_settings();
                let now = chrono::Utc::now();
                for d in [
                    s.google_polling_window,
                    s.company_polling_window,
                    s.pickup_max_age,
                    s.cleanup_after,
                    s.lookup_lag,
                    s.lease_duration,
                    s.listing_lag,
                    s.unlink_after,
                    s.abandon_after,
                ] {
                    prop_assert!(now.checked_sub_signed(d + d).is_some(), "{key} = {text:?}");
                }
            }
            Err(e) => prop_assert!(e.key.starts_with(key), "{key} = {text:?}: {e}"),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn every_part_of_a_split_body_reads_back_and_fits(
        source in side(),
        id in "[0-9]{1,12}",
        author in any::<String>(),
        body in long_text(3 * MAX_COMMENT_CHARS),
    ) {
        let parts = markers::mirror_comment_parts(source, &id, &author, &body);
        let k = parts.len();
        let mut text = String::new();
        for (i, part) in parts.iter().enumerate() {
            prop_assert!(part.chars().count() <= MAX_COMMENT_CHARS);
            let m = markers::parse_marker(part).unwrap();
            prop_assert_eq!(m.part, (i + 1, k));
            prop_assert_eq!(&m.source_id, &id);
            let (_, rest) = part.split_once('\n').unwrap_or_default();
            text.push_str(rest);
        }
        prop_assert_eq!(text, body, "the parts hold the whole body, in order");
    }
}
