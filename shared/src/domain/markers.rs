//! Every text casesync writes into a case and later reads back is formatted and parsed here,
//! and only here (docs/INVARIANTS.md#markers): the mirror markers on comments, the "now syncing" comment,
//! the line that names a CRM case in a Google case's description, and the outage comments.

use super::Side;
use once_cell::sync::Lazy;
use regex::Regex;

/// CSAPI's limit on a comment body, in Unicode scalar values.
pub const MAX_COMMENT_CHARS: usize = 12_800;

/// Prefix of a CRM description mirrored from Google (docs/ARCHITECTURE.md#what-syncs).
pub const MIRRORED_DESCRIPTION_PREFIX: &str = "CONTENT MIRRORED FROM GOOGLE SUPPORT:\n";

pub const RESUMED_COMMENT: &str = "Syncing has resumed.";

const NOW_SYNCING_PREFIX: &str = "This case is now syncing with Company Case: ";

/// What a marked item mirrors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MarkedKind {
    Comment,
    Attachment,
}

/// A parsed marker: the first line of an item casesync wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    pub source: Side,
    pub kind: MarkedKind,
    pub source_id: String,
    pub author: String,
    /// `(i, k)`: part i of k; an unsplit item is part 1 of 1.
    pub part: (usize, usize),
}

fn side_word(side: Side) -> &'static str {
    match side {
        Side::Google => "Google",
        Side::Company => "Company",
    }
}

fn kind_word(kind: MarkedKind) -> &'static str {
    match kind {
        MarkedKind::Comment => "Comment",
        MarkedKind::Attachment => "Attachment",
    }
}

/// A display name as it may appear in a marker: brackets would end the marker early, and
/// a line break would split it, so both are replaced; an absurdly long name is shortened
/// so a part always has room for text.
pub fn marker_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| match c {
            '[' => '(',
            ']' => ')',
            c if c.is_control() => ' ',
            c => c,
        })
        .take(200)
        .collect();
    let trimmed = cleaned.trim();
    if trimmed.is_empty() {
        "unknown".to_string()
    } else {
        trimmed.to_string()
    }
}

/// The marker line without a part suffix: `[Google Comment 3 by Alex]`.
pub fn marker_line(source: Side, kind: MarkedKind, source_id: &str, author: &str) -> String {
    format!(
        "[{} {} {} by {}]",
        side_word(source),
        kind_word(kind),
        source_id,
        marker_name(author)
    )
}

/// The comments that mirror one source comment: one, or several marked `(part i/k)` when
/// the marked body would exceed [`MAX_COMMENT_CHARS`]. Never truncates.
pub fn mirror_comment_parts(
    source: Side,
    source_id: &str,
    author: &str,
    body: &str,
) -> Vec<String> {
    mirror_parts(source, MarkedKind::Comment, source_id, author, body)
}

/// Like [`mirror_comment_parts`] for a marked comment that stands for an attachment.
pub fn mirror_parts(
    source: Side,
    kind: MarkedKind,
    source_id: &str,
    author: &str,
    body: &str,
) -> Vec<String> {
    let header = marker_line(source, kind, source_id, author);
    let body_chars: Vec<char> = body.chars().collect();
    if header.chars().count() + 1 + body_chars.len() <= MAX_COMMENT_CHARS {
        return vec![format!("{header}\n{body}")];
    }
    let mut parts_count = 2usize;
    loop {
        let digits = parts_count.to_string().len();
        // "[…] (part i/k)\n" with i as wide as k.
        let overhead = header.chars().count() + " (part /)\n".len() + 2 * digits;
        let room = MAX_COMMENT_CHARS.saturating_sub(overhead).max(1);
        let needed = body_chars.len().div_ceil(room);
        if needed <= parts_count {
            return body_chars
                .chunks(room)
                .enumerate()
                .map(|(i, chunk)| {
                    let text: String = chunk.iter().collect();
                    format!("{header} (part {}/{})\n{text}", i + 1, needed)
                })
                .collect();
        }
        parts_count = needed;
    }
}

static MARKER_RE: Lazy<Regex> = Lazy::new(|| {
    Regex::new(
        r"^\[(Google|Company) (Comment|Attachment) ([^\s\[\]]+) by ([^\[\]\n]*)\](?: \(part (\d+)/(\d+)\))?$",
    )
    .unwrap_or_else(|e| unreachable!("the marker pattern is a constant: {e}"))
});

/// Reads the marker on the first line of `body`, if it has one.
pub fn parse_marker(body: &str) -> Option<Marker> {
    let first = body.lines().next()?.trim_end_matches('\r');
    let caps = MARKER_RE.captures(first)?;
    let source = if &caps[1] == "Google" {
        Side::Google
    } else {
        Side::Company
    };
    let kind = if &caps[2] == "Comment" {
        MarkedKind::Comment
    } else {
        MarkedKind::Attachment
    };
    let part = match (caps.get(5), caps.get(6)) {
        (Some(i), Some(k)) => {
            let i: usize = i.as_str().parse().ok()?;
            let k: usize = k.as_str().parse().ok()?;
            if i == 0 || i > k {
                return None;
            }
            (i, k)
        }
        _ => (1, 1),
    };
    Some(Marker {
        source,
        kind,
        source_id: caps[3].to_string(),
        author: caps[4].to_string(),
        part,
    })
}

/// The comment posted on a Google case once its CRM counterpart exists.
pub fn now_syncing_comment(company_case_id: &str) -> String {
    format!("{NOW_SYNCING_PREFIX}{company_case_id}")
}

/// The CRM case id a "now syncing" comment names.
pub fn parse_now_syncing(body: &str) -> Option<&str> {
    body.trim().strip_prefix(NOW_SYNCING_PREFIX).map(str::trim)
}

/// The last line of a Google case casesync created for a CRM case (docs/INVARIANTS.md#create-intents-and-the-lookup-lag).
pub fn description_line(crm_kind: &str, company_case_id: &str) -> String {
    format!("casesync: {crm_kind} case {company_case_id}")
}

/// The CRM kind and id named by the last line of a Google case description.
pub fn parse_description_line(description: &str) -> Option<(String, String)> {
    let last = description.trim_end().lines().last()?.trim();
    let rest = last.strip_prefix("casesync: ")?;
    let (kind, id) = rest.split_once(" case ")?;
    if kind.is_empty() || id.is_empty() || kind.contains(' ') || id.contains(' ') {
        return None;
    }
    Some((kind.to_string(), id.to_string()))
}

/// The description of a CRM case mirrored from a Google case (docs/ARCHITECTURE.md#what-syncs).
pub fn mirrored_crm_description(google_description: &str, google_case_url: &str) -> String {
    format!("{MIRRORED_DESCRIPTION_PREFIX}{google_description}\n\nGoogle case: {google_case_url}")
}

/// The description of a Google case created for a CRM case: the CRM text, a link, and the
/// line that names the CRM case last.
pub fn google_description_for_crm_case(
    crm_description: &str,
    crm_url: Option<&str>,
    crm_kind: &str,
    company_case_id: &str,
) -> String {
    let mut out = crm_description.trim_end().to_string();
    if out.is_empty() {
        out.push_str("(no description)");
    }
    if let Some(url) = crm_url {
        out.push_str(&format!("\n\nCompany case: {url}"));
    }
    out.push_str("\n\n");
    out.push_str(&description_line(crm_kind, company_case_id));
    out
}

/// `This case has not synced properly in {h}h {m}m.` (docs/INVARIANTS.md#markers).
pub fn outage_comment(lag: chrono::Duration) -> String {
    let minutes = lag.num_minutes().max(0);
    format!(
        "This case has not synced properly in {}h {}m.",
        minutes / 60,
        minutes % 60
    )
}

/// The comment that stands in for an attachment too large to copy (docs/INVARIANTS.md#attachment-limits).
pub fn oversized_attachment_comment(
    source: Side,
    source_id: &str,
    author: &str,
    filename: &str,
    size_bytes: u64,
    limit_bytes: u64,
) -> String {
    format!(
        "{}\nThe attachment \"{}\" ({} bytes) was not copied: it is larger than the {} byte limit of this connector. Download it from the {} case.",
        marker_line(source, MarkedKind::Attachment, source_id, author),
        filename,
        size_bytes,
        limit_bytes,
        match source {
            Side::Google => "Google",
            Side::Company => "company",
        }
    )
}

/// The comment that stands in for an item the target refused for good: the marker line of
/// `marked` (a mirror's body or a bare marker line) and the reason. Carrying the marker, it
/// counts as that item's mirror, so the item is announced once and not retried.
pub fn refused_item_notice(marked: &str, text: &str) -> String {
    let marker = marked.lines().next().unwrap_or_default();
    format!("{marker}\n{text}")
}

/// Told on a CRM case whose Google-name field names a case outside casesync's scope.
pub fn typed_link_refused_notice(google_case_name: &str, why: &str) -> String {
    format!(
        "casesync did not link the Google Cloud support case {google_case_name} named in this ticket: {why}. Correct the field, or clear it to have a new Google case opened."
    )
}

/// Told on a CRM case reopened after its Google case was closed (docs/INVARIANTS.md#priority-and-close).
pub fn google_case_closed_notice(google_case_name: &str) -> String {
    format!(
        "The Google Cloud support case {google_case_name} is closed and cannot be reopened. Open a new case to continue with Google Cloud Support."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_have_the_exact_prefixes_and_parse_back() {
        let parts = mirror_comment_parts(Side::Google, "7", "Ann [Support]", "hello\nworld");
        assert_eq!(
            parts,
            vec!["[Google Comment 7 by Ann (Support)]\nhello\nworld"]
        );
        let m = parse_marker(&parts[0]).unwrap();
        assert_eq!(m.source, Side::Google);
        assert_eq!(m.kind, MarkedKind::Comment);
        assert_eq!(m.source_id, "7");
        assert_eq!(m.author, "Ann (Support)");
        assert_eq!(m.part, (1, 1));

        let c = mirror_comment_parts(Side::Company, "10042", "Bo", "x");
        assert_eq!(c, vec!["[Company Comment 10042 by Bo]\nx"]);
        assert_eq!(parse_marker(&c[0]).unwrap().source, Side::Company);
    }

    #[test]
    fn text_that_is_not_a_marker_is_not_read_as_one() {
        assert!(parse_marker("hello [Google Comment 3 by X]").is_none());
        assert!(parse_marker("[Google Comment 3 by X] trailing").is_none());
        assert!(parse_marker("[Google Comment  by X]").is_none());
        assert!(parse_marker("[Google Comment 3 by X] (part 3/2)").is_none());
        assert!(parse_marker("").is_none());
    }

    #[test]
    fn long_bodies_are_split_into_marked_parts_and_never_truncated() {
        let body: String = "é".repeat(30_000);
        let parts = mirror_comment_parts(Side::Google, "12", "Zed", &body);
        assert_eq!(parts.len(), 3);
        let mut rebuilt = String::new();
        for (i, p) in parts.iter().enumerate() {
            assert!(p.chars().count() <= MAX_COMMENT_CHARS, "part {i} too long");
            let m = parse_marker(p).unwrap();
            assert_eq!(m.part, (i + 1, 3));
            rebuilt.push_str(p.split_once('\n').unwrap().1);
        }
        assert_eq!(rebuilt, body);
    }

    #[test]
    fn a_body_exactly_at_the_limit_stays_one_comment() {
        let header = "[Google Comment 1 by A]\n";
        let body = "a".repeat(MAX_COMMENT_CHARS - header.len());
        assert_eq!(mirror_comment_parts(Side::Google, "1", "A", &body).len(), 1);
        let body = "a".repeat(MAX_COMMENT_CHARS - header.len() + 1);
        assert_eq!(mirror_comment_parts(Side::Google, "1", "A", &body).len(), 2);
    }

    #[test]
    fn the_now_syncing_comment_and_description_line_round_trip() {
        let c = now_syncing_comment("SUP-4");
        assert_eq!(c, "This case is now syncing with Company Case: SUP-4");
        assert_eq!(parse_now_syncing(&c), Some("SUP-4"));
        let d =
            google_description_for_crm_case("Broken VM", Some("https://crm/x"), "jira", "10001");
        assert!(d.ends_with("\n\ncasesync: jira case 10001"));
        assert_eq!(
            parse_description_line(&d),
            Some(("jira".to_string(), "10001".to_string()))
        );
        assert_eq!(parse_description_line("casesync: jira case"), None);
        assert_eq!(parse_description_line("no marker"), None);
    }

    #[test]
    fn the_outage_comment_names_hours_and_minutes() {
        assert_eq!(
            outage_comment(chrono::Duration::minutes(135)),
            "This case has not synced properly in 2h 15m."
        );
        assert_eq!(
            outage_comment(chrono::Duration::seconds(59)),
            "This case has not synced properly in 0h 0m."
        );
    }
}
