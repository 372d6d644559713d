//! The `cases.search` query strings casesync sends. The grammar is Google's (see the
//! discovery document's `cases.search` `query` parameter), so building and escaping live in
//! one place where tests pin them down: a wrong quote here would search for the wrong
//! cases, or make every poll fail with 400. Only forms the document shows are built:
//! terms joined by ` AND `, `update_time>` with a zoned time, free text as a quoted string.

use chrono::{DateTime, SecondsFormat, Utc};

/// `update_time>"2026-11-29T20:04:05Z"`: cases updated after `since`.
///
/// The API requires a time zone; RFC 3339 with `Z` is the least ambiguous one. Sub-second
/// digits are dropped, which moves the bound back (never forward), so truncation can only
/// widen the window, never miss an update.
pub fn updated_since(since: DateTime<Utc>) -> String {
    format!(
        "update_time>{}",
        quote(&since.to_rfc3339_opts(SecondsFormat::Secs, true))
    )
}

/// `creator.email="a@b.c" AND "free text"`: cases opened by `email` whose display name,
/// description or comments contain `text` (the lookup of docs/INVARIANTS.md#create-intents-and-the-lookup-lag finds a counterpart by its last line).
///
/// The document says terms are "separated by `AND`"; a server that reads it literally
/// refuses juxtaposed terms with 400, which would fail every lookup.
pub fn creator_and_text(email: &str, text: &str) -> String {
    format!("creator.email={} AND {}", quote(email), quote(text))
}

/// A double-quoted string literal of the query language: backslashes and quotes are
/// escaped with a backslash. Line breaks are folded into spaces because a free-text term is
/// a substring match and a literal line break has no documented escape.
pub fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' | '\r' | '\t' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn updated_since_is_rfc3339_with_z_and_whole_seconds() {
        let t = Utc.with_ymd_and_hms(2026, 11, 29, 20, 4, 5).unwrap();
        assert_eq!(updated_since(t), r#"update_time>"2026-11-29T20:04:05Z""#);
        let with_millis = t + chrono::Duration::milliseconds(999);
        assert_eq!(
            updated_since(with_millis),
            r#"update_time>"2026-11-29T20:04:05Z""#,
            "sub-seconds are truncated so the window only widens"
        );
    }

    #[test]
    fn creator_and_text_joins_the_quoted_terms_with_and() {
        assert_eq!(
            creator_and_text(
                "casesync@p.iam.gserviceaccount.com",
                "casesync: jira case ABC-1"
            ),
            r#"creator.email="casesync@p.iam.gserviceaccount.com" AND "casesync: jira case ABC-1""#
        );
        // Text that looks like an operator stays inside its literal.
        assert_eq!(
            creator_and_text("a@b.c", "x AND y OR z"),
            r#"creator.email="a@b.c" AND "x AND y OR z""#
        );
    }

    #[test]
    fn quotes_and_backslashes_are_escaped() {
        assert_eq!(quote(r#"say "hi""#), r#""say \"hi\"""#);
        assert_eq!(quote(r"C:\temp\"), r#""C:\\temp\\""#);
        assert_eq!(quote(r#"\""#), r#""\\\"""#);
        assert_eq!(
            creator_and_text(r#"odd"@x.com"#, r#"a\"b"#),
            r#"creator.email="odd\"@x.com" AND "a\\\"b""#
        );
    }

    #[test]
    fn line_breaks_and_controls_cannot_break_out_of_the_literal() {
        assert_eq!(quote("a\nb\r\tc\u{0}d"), r#""a b  cd""#);
        assert_eq!(quote("ünïcødé ✓"), "\"ünïcødé ✓\"");
    }
}
