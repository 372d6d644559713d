//! The `cases.search` query and `cases.list` filter languages, read strictly.
//!
//! The discovery document defines both by prose and a few examples. This module accepts
//! exactly the forms they show and answers everything else with 400 INVALID_ARGUMENT, so a
//! query casesync builds wrongly fails against the emulator, in tests, instead of against
//! a stricter Google: terms joined by ` AND `; `OR` only between `priority` terms, in
//! parentheses when other terms are joined to them; `state=OPEN|CLOSED` and
//! `priority=P0`..`P4` unquoted; `creator.email="…"` quoted; `update_time>"…"` with `>`
//! only and an RFC 3339 time with offset; free text as a quoted string. Where the document
//! is silent the strictest reading that still admits every documented example and
//! casesync's own lookup (`creator.email="…" AND "…"`) is taken; the crate's README lists
//! each one.

use chrono::{DateTime, Utc};

use crate::model::{CaseVersion, CommentRecord, Priority};

/// Which of the two grammars is parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `cases.search?query=`: everything, free text and `update_time` included.
    Search,
    /// `cases.list?filter=`: only `state`, `priority`, `creator.email`.
    ListFilter,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateFilter {
    Open,
    Closed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    And(Vec<Expr>),
    /// Only ever `priority` terms.
    Or(Vec<Expr>),
    State(StateFilter),
    Priority(Priority),
    CreatorEmail(String),
    UpdatedAfter(DateTime<Utc>),
    Text(String),
}

/// What a query is evaluated against: one version of a case and its comments as of
/// that version.
pub struct CaseView<'a> {
    pub version: &'a CaseVersion,
    pub creator_email: Option<&'a str>,
    pub comments: &'a [CommentRecord],
}

impl Expr {
    pub fn matches(&self, v: &CaseView<'_>) -> bool {
        match self {
            Expr::And(es) => es.iter().all(|e| e.matches(v)),
            Expr::Or(es) => es.iter().any(|e| e.matches(v)),
            Expr::State(StateFilter::Open) => !v.version.state.is_closed(),
            Expr::State(StateFilter::Closed) => v.version.state.is_closed(),
            Expr::Priority(p) => v.version.priority == *p,
            Expr::CreatorEmail(e) => v.creator_email.is_some_and(|c| c.eq_ignore_ascii_case(e)),
            Expr::UpdatedAfter(time) => v.version.update_time > *time,
            Expr::Text(t) => {
                let needle = t.to_lowercase();
                v.version.display_name.to_lowercase().contains(&needle)
                    || v.version.description.to_lowercase().contains(&needle)
                    || v.comments
                        .iter()
                        .take(v.version.comment_count)
                        .any(|c| c.body.to_lowercase().contains(&needle))
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    LParen,
    RParen,
    Op(&'static str),
    Str(String),
    Word(String),
}

/// A token and the whitespace right before it: spacing is part of the strict grammar
/// (one space around `AND`/`OR`, none inside a term).
#[derive(Debug, Clone)]
struct Tok {
    kind: Kind,
    gap: String,
}

fn describe(k: &Kind) -> String {
    match k {
        Kind::LParen => "'('".into(),
        Kind::RParen => "')'".into(),
        Kind::Op(op) => format!("operator '{op}'"),
        Kind::Str(s) => format!("string \"{s}\""),
        Kind::Word(w) => format!("'{w}'"),
    }
}

/// The tokens of `q` and the whitespace after the last one.
fn tokenize(q: &str) -> Result<(Vec<Tok>, String), String> {
    let mut out = Vec::new();
    let mut chars = q.chars().peekable();
    let mut gap = String::new();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            gap.push(c);
            chars.next();
            continue;
        }
        chars.next();
        let kind = match c {
            '(' => Kind::LParen,
            ')' => Kind::RParen,
            '"' => {
                let mut s = String::new();
                let mut closed = false;
                while let Some(c) = chars.next() {
                    match c {
                        // casesync escapes only these two; anything else would be a guess
                        // at an escape syntax the document never shows.
                        '\\' => match chars.next() {
                            Some(e @ ('"' | '\\')) => s.push(e),
                            Some(e) => return Err(format!("unsupported escape \\{e} in a string")),
                            None => return Err("unterminated escape in a string".into()),
                        },
                        '"' => {
                            closed = true;
                            break;
                        }
                        c if c.is_control() => {
                            return Err("control character in a string".into());
                        }
                        c => s.push(c),
                    }
                }
                if !closed {
                    return Err("unterminated string literal".into());
                }
                Kind::Str(s)
            }
            '=' => Kind::Op("="),
            ':' => Kind::Op(":"),
            '>' | '<' | '!' => {
                let eq = chars.peek() == Some(&'=');
                if eq {
                    chars.next();
                }
                Kind::Op(match (c, eq) {
                    ('>', false) => ">",
                    ('>', true) => ">=",
                    ('<', false) => "<",
                    ('<', true) => "<=",
                    ('!', true) => "!=",
                    _ => return Err("unexpected '!'".into()),
                })
            }
            c => {
                let mut w = String::from(c);
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || "()\"=:<>!".contains(c) {
                        break;
                    }
                    w.push(c);
                    chars.next();
                }
                Kind::Word(w)
            }
        };
        out.push(Tok {
            kind,
            gap: std::mem::take(&mut gap),
        });
    }
    Ok((out, gap))
}

/// Tokens of a non-empty query whose first and last character are not whitespace.
fn tokens_of(q: &str) -> Result<Vec<Tok>, String> {
    let (toks, trailing) = tokenize(q)?;
    match toks.first() {
        None => Err("a query of only whitespace (send an empty query for no filtering)".into()),
        Some(first) if !first.gap.is_empty() || !trailing.is_empty() => {
            Err("leading or trailing whitespace".into())
        }
        Some(_) => Ok(toks),
    }
}

fn is_keyword_spelling(w: &str) -> bool {
    w.eq_ignore_ascii_case("AND") || w.eq_ignore_ascii_case("OR") || w.eq_ignore_ascii_case("NOT")
}

/// `and`, `Or`, `not`…: an operator spelled in anything but upper case.
fn is_lower_keyword(w: &str) -> bool {
    is_keyword_spelling(w) && !matches!(w, "AND" | "OR" | "NOT")
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    dialect: Dialect,
}

/// Parses a query; `Ok(None)` for an empty one (no filtering).
pub fn parse(q: &str, dialect: Dialect) -> Result<Option<Expr>, String> {
    if q.is_empty() {
        return Ok(None);
    }
    let mut p = Parser {
        toks: tokens_of(q)?,
        pos: 0,
        dialect,
    };
    p.expression().map(Some)
}

impl Parser {
    fn peek(&self) -> Option<&Kind> {
        self.toks.get(self.pos).map(|t| &t.kind)
    }

    fn gap(&self) -> &str {
        self.toks
            .get(self.pos)
            .map(|t| t.gap.as_str())
            .unwrap_or("")
    }

    fn next(&mut self) -> Option<Kind> {
        let t = self.toks.get(self.pos).map(|t| t.kind.clone());
        self.pos += 1;
        t
    }

    fn at_keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Kind::Word(w)) if w == kw)
    }

    /// Consumes `kw`, which must stand between two terms with one space on each side.
    fn keyword(&mut self, kw: &str) -> Result<(), String> {
        if self.gap() != " " {
            return Err(format!(
                "{kw} must be separated from the terms by one space"
            ));
        }
        self.pos += 1;
        if self.peek().is_none() {
            return Err(format!("the query ends after {kw}"));
        }
        if self.gap() != " " {
            return Err(format!(
                "{kw} must be separated from the terms by one space"
            ));
        }
        Ok(())
    }

    /// Why the token after a complete term cannot follow it.
    fn junction_error(&self) -> String {
        match self.peek() {
            Some(Kind::Word(w)) if is_lower_keyword(w) => {
                format!("'{w}': the operators AND and OR are written in upper case")
            }
            Some(Kind::Word(w)) if w == "OR" => {
                "OR joins priority terms only, and an OR group joined with other terms must be \
                 in parentheses, e.g. state=OPEN AND (priority=P0 OR priority=P1)"
                    .into()
            }
            Some(Kind::RParen) => "unmatched ')'".into(),
            Some(k) => format!(
                "terms must be joined with AND (found {} right after a term)",
                describe(k)
            ),
            None => "unexpected end of query".into(),
        }
    }

    fn expression(&mut self) -> Result<Expr, String> {
        let first = self.term()?;
        if self.at_keyword("OR") {
            // Shown bare only as a whole query: `priority=P1 OR priority=P2`.
            let group = self.or_group(first)?;
            if matches!(self.peek(), Some(Kind::Word(w)) if is_lower_keyword(w)) {
                return Err(self.junction_error());
            }
            if self.peek().is_some() {
                return Err(
                    "an OR group joined with other terms must be in parentheses, e.g. \
                     state=OPEN AND (priority=P0 OR priority=P1)"
                        .into(),
                );
            }
            return Ok(group);
        }
        let mut terms = vec![first];
        while self.peek().is_some() {
            if !self.at_keyword("AND") {
                return Err(self.junction_error());
            }
            self.keyword("AND")?;
            terms.push(self.term()?);
            if self.at_keyword("OR") {
                return Err(self.junction_error());
            }
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            Expr::And(terms)
        })
    }

    /// `first OR priority=… OR …`, every operand a priority term.
    fn or_group(&mut self, first: Expr) -> Result<Expr, String> {
        let only_priorities = "OR is only supported between priority terms, e.g. \
                               priority=P0 OR priority=P1";
        if !matches!(first, Expr::Priority(_)) {
            return Err(only_priorities.into());
        }
        let mut terms = vec![first];
        while self.at_keyword("OR") {
            self.keyword("OR")?;
            let t = self.term()?;
            if !matches!(t, Expr::Priority(_)) {
                return Err(only_priorities.into());
            }
            terms.push(t);
        }
        Ok(Expr::Or(terms))
    }

    fn term(&mut self) -> Result<Expr, String> {
        match self.next() {
            Some(Kind::LParen) => {
                if !self.gap().is_empty() {
                    return Err("no whitespace after '('".into());
                }
                let first = self.term()?;
                if !self.at_keyword("OR") {
                    if matches!(self.peek(), Some(Kind::Word(w)) if is_lower_keyword(w)) {
                        return Err(self.junction_error());
                    }
                    return Err(
                        "parentheses only group priority terms joined with OR, e.g. \
                         (priority=P0 OR priority=P1)"
                            .into(),
                    );
                }
                let group = self.or_group(first)?;
                match self.peek() {
                    Some(Kind::RParen) if self.gap().is_empty() => {
                        self.pos += 1;
                        Ok(group)
                    }
                    Some(Kind::RParen) => Err("no whitespace before ')'".into()),
                    None => Err("missing ')'".into()),
                    Some(_) => Err(self.junction_error()),
                }
            }
            Some(Kind::Str(s)) => self.text(s),
            Some(Kind::Word(w)) => {
                if w == "NOT" || w.starts_with('-') {
                    return Err("negation is not supported".into());
                }
                if let Some(Kind::Op(op)) = self.peek().cloned() {
                    if !self.gap().is_empty() {
                        return Err(format!("no whitespace between {w} and '{op}'"));
                    }
                    self.pos += 1;
                    if !self.gap().is_empty() {
                        return Err(format!("no whitespace after {w}{op}"));
                    }
                    return match self.next() {
                        Some(value @ (Kind::Str(_) | Kind::Word(_))) => {
                            self.restriction(&w, op, value)
                        }
                        _ => Err(format!("missing value after {w}{op}")),
                    };
                }
                if is_keyword_spelling(&w) {
                    Err(format!(
                        "unexpected '{w}': AND and OR (upper case) stand between two terms"
                    ))
                } else {
                    Err(format!(
                        "free text must be a quoted string, e.g. \"{w}\" (or '{w}' is a field \
                         without an operator)"
                    ))
                }
            }
            Some(k) => Err(format!("unexpected {}", describe(&k))),
            None => Err("unexpected end of query".into()),
        }
    }

    fn text(&self, s: String) -> Result<Expr, String> {
        match self.dialect {
            Dialect::ListFilter => Err("free text is not supported in a filter".into()),
            Dialect::Search if s.is_empty() => Err("empty free text \"\"".into()),
            Dialect::Search => Ok(Expr::Text(s)),
        }
    }

    fn restriction(&self, field: &str, op: &str, value: Kind) -> Result<Expr, String> {
        let unquoted = |allowed: &str| match &value {
            Kind::Word(w) => Ok(w.clone()),
            Kind::Str(s) => Err(format!(
                "{field} takes an unquoted value ({allowed}), not the string \"{s}\""
            )),
            _ => Err(format!("missing value after {field}{op}")),
        };
        let quoted = |example: &str| match &value {
            Kind::Str(s) => Ok(s.clone()),
            Kind::Word(w) => Err(format!(
                "{field} takes a quoted string, e.g. {field}{op}\"{example}\", not {w}"
            )),
            _ => Err(format!("missing value after {field}{op}")),
        };
        match field {
            "state" => {
                expect_eq(field, op)?;
                match unquoted("OPEN or CLOSED")?.as_str() {
                    "OPEN" => Ok(Expr::State(StateFilter::Open)),
                    "CLOSED" => Ok(Expr::State(StateFilter::Closed)),
                    other => Err(format!("invalid state value {other:?}: OPEN or CLOSED")),
                }
            }
            "priority" => {
                expect_eq(field, op)?;
                let v = unquoted("P0, P1, P2, P3 or P4")?;
                match v.as_str() {
                    "P0" | "P1" | "P2" | "P3" | "P4" => Priority::parse_set(&v)
                        .map(Expr::Priority)
                        .ok_or_else(|| format!("invalid priority value {v:?}")),
                    _ => Err(format!(
                        "invalid priority value {v:?}: P0, P1, P2, P3 or P4"
                    )),
                }
            }
            "creator.email" => {
                expect_eq(field, op)?;
                let v = quoted("tester@example.com")?;
                if v.is_empty() {
                    return Err("empty creator.email".into());
                }
                Ok(Expr::CreatorEmail(v))
            }
            "update_time" if self.dialect == Dialect::Search => {
                if op != ">" {
                    return Err(format!(
                        "update_time only supports the greater than operator (>), not '{op}'"
                    ));
                }
                let v = quoted("2020-01-01T00:00:00-05:00")?;
                strict_time(&v).map(Expr::UpdatedAfter)
            }
            "updateTime" if self.dialect == Dialect::Search => Err(
                "unknown field \"updateTime\": the query field is update_time, in snake case"
                    .into(),
            ),
            other => Err(format!("unknown field {other:?}")),
        }
    }
}

fn expect_eq(field: &str, op: &str) -> Result<(), String> {
    if op == "=" {
        Ok(())
    } else {
        Err(format!("{field} only supports '=', not '{op}'"))
    }
}

/// `YYYY-MM-DDTHH:MM:SS` and `Z` or `±HH:MM`, the shape of the document's example: no
/// fractions, no lower-case `t`/`z`, no space for `T`, no offset-less local time.
fn strict_time(value: &str) -> Result<DateTime<Utc>, String> {
    let b = value.as_bytes();
    let digits = |from: usize, to: usize| {
        b.get(from..to)
            .is_some_and(|s| s.iter().all(u8::is_ascii_digit))
    };
    let at = |i: usize, c: u8| b.get(i) == Some(&c);
    let date_time = b.len() >= 20
        && digits(0, 4)
        && at(4, b'-')
        && digits(5, 7)
        && at(7, b'-')
        && digits(8, 10)
        && at(10, b'T')
        && digits(11, 13)
        && at(13, b':')
        && digits(14, 16)
        && at(16, b':')
        && digits(17, 19);
    let zone = match b.get(19..) {
        Some(b"Z") => true,
        Some([sign, ..]) if (*sign == b'+' || *sign == b'-') && b.len() == 25 => {
            digits(20, 22) && at(22, b':') && digits(23, 25)
        }
        _ => false,
    };
    if !(date_time && zone) {
        return Err(format!(
            "invalid time {value:?} for update_time: use an ISO date, time and time zone \
             such as \"2020-01-01T00:00:00-05:00\""
        ));
    }
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("invalid time {value:?} for update_time: {e}"))
}

/// One term of a `caseClassifications.search` query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassificationTerm {
    /// `display_name` or `id`.
    pub field: &'static str,
    pub value: String,
    /// `:` with `*` wildcards (display_name only), else `=`.
    pub wildcard: bool,
}

/// Parses a `caseClassifications.search` query: `display_name:"*Compute*"` (`*`
/// wildcards, case-insensitive), `display_name="exact"`, `id="…"`, joined by ` AND `.
/// The discovery document says nothing of this grammar; these are the forms Google's
/// guides show, read as strictly as the case query.
pub fn classification_matcher(q: &str) -> Result<Vec<ClassificationTerm>, String> {
    if q.is_empty() {
        return Ok(Vec::new());
    }
    let toks = tokens_of(q)?;
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        let term = match (toks.get(i), toks.get(i + 1), toks.get(i + 2)) {
            (Some(f), Some(o), Some(v)) => match (&f.kind, &o.kind, &v.kind) {
                (Kind::Word(field), Kind::Op(op), value)
                    if o.gap.is_empty() && v.gap.is_empty() =>
                {
                    let Kind::Str(value) = value else {
                        return Err(format!("{field} takes a quoted string"));
                    };
                    let (field, wildcard) = match (field.as_str(), *op) {
                        ("display_name", ":") => ("display_name", true),
                        ("display_name", "=") => ("display_name", false),
                        ("id", "=") => ("id", false),
                        ("display_name" | "id", other) => {
                            return Err(format!("{field} does not support '{other}'"));
                        }
                        (other, _) => return Err(format!("unknown field {other:?}")),
                    };
                    ClassificationTerm {
                        field,
                        value: value.clone(),
                        wildcard,
                    }
                }
                (Kind::Word(_), Kind::Op(_), _) => {
                    return Err("no whitespace inside a term".into());
                }
                (k, _, _) => return Err(format!("unexpected {}", describe(k))),
            },
            (Some(t), _, _) => return Err(format!("unexpected {}", describe(&t.kind))),
            (None, _, _) => return Err("unexpected end of query".into()),
        };
        out.push(term);
        i += 3;
        match toks.get(i) {
            None => return Ok(out),
            Some(t) if t.kind == Kind::Word("AND".into()) => {
                let next_gap = toks.get(i + 1).map(|n| n.gap.as_str());
                if t.gap != " " || next_gap != Some(" ") {
                    return Err("AND must be separated from the terms by one space".into());
                }
                i += 1;
            }
            Some(t) => match &t.kind {
                Kind::Word(w) if is_keyword_spelling(w) => {
                    return Err(format!("'{w}': terms are joined with AND (upper case)"));
                }
                k => {
                    return Err(format!(
                        "terms must be joined with AND (found {})",
                        describe(k)
                    ));
                }
            },
        }
    }
}

/// Case-insensitive glob match where `*` matches any run of characters.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let t: Vec<char> = text.to_lowercase().chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && p[pi] != '*' && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Actor, CaseState};

    fn version(state: CaseState, priority: Priority, t: &str) -> CaseVersion {
        CaseVersion {
            display_name: "Disk is slow".into(),
            description: "The persistent disk on vm-1 is slow".into(),
            priority,
            state,
            subscriber_email_addresses: vec![],
            escalated: false,
            update_time: DateTime::parse_from_rfc3339(t)
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_default(),
            comment_count: 1,
        }
    }

    fn eval(q: &str, v: &CaseVersion) -> bool {
        let comments = vec![CommentRecord {
            id: 1,
            body: "casesync: jira case ABC-1".into(),
            create_time: v.update_time,
            creator: Actor::customer("a", "a@example.com"),
        }];
        let e = parse(q, Dialect::Search)
            .unwrap_or_else(|e| panic!("{q}: {e}"))
            .unwrap();
        e.matches(&CaseView {
            version: v,
            creator_email: Some("Tester@Example.com"),
            comments: &comments,
        })
    }

    fn rejected(q: &str) -> String {
        match parse(q, Dialect::Search) {
            Err(e) => e,
            Ok(e) => panic!("{q} should be rejected, parsed as {e:?}"),
        }
    }

    #[test]
    fn documented_examples_parse_and_match() {
        let v = version(CaseState::New, Priority::P1, "2026-03-01T00:00:00Z");
        assert!(eval("state=OPEN", &v));
        assert!(!eval("state=CLOSED", &v));
        assert!(eval(
            r#"state=OPEN AND creator.email="tester@example.com""#,
            &v
        ));
        assert!(eval("state=OPEN AND (priority=P0 OR priority=P1)", &v));
        assert!(eval("priority=P1 OR priority=P2", &v));
        assert!(!eval("priority=P0 OR priority=P2", &v));
        assert!(eval(r#"update_time>"2020-01-01T00:00:00-05:00""#, &v));
        assert!(eval(r#""Disk is""#, &v));
        // The examples of cases.list's filter.
        for q in [
            "state=CLOSED",
            r#"state=OPEN AND creator.email="tester@example.com""#,
            "state=OPEN AND (priority=P0 OR priority=P1)",
        ] {
            assert!(parse(q, Dialect::ListFilter).is_ok(), "{q}");
        }
    }

    #[test]
    fn a_field_and_quoted_free_text_are_accepted() {
        let v = version(CaseState::New, Priority::P1, "2026-03-01T00:00:00Z");
        let q = r#"creator.email="tester@example.com" AND "casesync: jira case ABC-1""#;
        assert_eq!(
            parse(q, Dialect::Search).unwrap(),
            Some(Expr::And(vec![
                Expr::CreatorEmail("tester@example.com".into()),
                Expr::Text("casesync: jira case ABC-1".into()),
            ]))
        );
        assert!(eval(q, &v));
        assert!(!eval(
            r#"creator.email="other@example.com" AND "casesync: jira case ABC-1""#,
            &v
        ));
        assert!(eval(r#""casesync: jira case ABC-1" AND state=OPEN"#, &v));
        assert!(eval(
            r#"update_time>"2026-02-01T00:00:00+00:00" AND state=OPEN"#,
            &v
        ));
        assert_eq!(
            parse(r#""say \"hi\" \\ there""#, Dialect::Search).unwrap(),
            Some(Expr::Text(r#"say "hi" \ there"#.into()))
        );
    }

    #[test]
    fn update_time_honours_offsets_and_is_strictly_after() {
        let v = version(CaseState::New, Priority::P1, "2026-03-01T00:00:00Z");
        assert!(!eval(r#"update_time>"2026-03-01T00:00:00Z""#, &v));
        // 2026-02-28T17:00:00-07:00 is exactly the update time.
        assert!(!eval(r#"update_time>"2026-02-28T17:00:00-07:00""#, &v));
        assert!(eval(r#"update_time>"2026-02-28T16:59:59-07:00""#, &v));
        assert!(eval(r#"update_time>"2026-03-01T00:59:59+01:00""#, &v));
    }

    #[test]
    fn juxtaposed_terms_are_rejected() {
        let e = rejected(r#"creator.email="x@example.com" "casesync: rt case 4""#);
        assert!(e.contains("joined with AND"), "{e}");
        let e = rejected(r#"state=CLOSED update_time>"2026-01-01T00:00:00Z""#);
        assert!(e.contains("joined with AND"), "{e}");
        let e = rejected(r#""a" "b""#);
        assert!(e.contains("joined with AND"), "{e}");
        let e = rejected(r#"state=OPEN"x""#);
        assert!(e.contains("joined with AND"), "{e}");
    }

    #[test]
    fn lower_case_operators_are_rejected() {
        for q in [
            "state=OPEN and priority=P1",
            "priority=P1 or priority=P2",
            "state=OPEN And priority=P1",
            "state=OPEN AND (priority=P0 or priority=P1)",
        ] {
            let e = rejected(q);
            assert!(e.contains("upper case"), "{q}: {e}");
        }
    }

    #[test]
    fn or_is_only_between_priority_terms() {
        for q in [
            "state=OPEN OR state=CLOSED",
            r#""a" OR "b""#,
            "priority=P1 OR state=OPEN",
            r#"creator.email="a@b.c" OR priority=P1"#,
            "state=OPEN AND (priority=P0 OR state=CLOSED)",
        ] {
            let e = rejected(q);
            assert!(e.contains("OR"), "{q}: {e}");
        }
        // Joined with other terms, a priority OR group needs its parentheses.
        for q in [
            "state=OPEN AND priority=P0 OR priority=P1",
            "priority=P0 OR priority=P1 AND state=OPEN",
        ] {
            let e = rejected(q);
            assert!(e.contains("parentheses"), "{q}: {e}");
        }
        for q in [
            "(state=OPEN)",
            "(priority=P1)",
            "((priority=P0 OR priority=P1))",
        ] {
            let e = rejected(q);
            assert!(e.contains("parentheses") || e.contains("OR"), "{q}: {e}");
        }
    }

    #[test]
    fn quoted_enum_values_are_rejected() {
        for q in [r#"state="OPEN""#, r#"priority="P1""#] {
            let e = rejected(q);
            assert!(e.contains("unquoted"), "{q}: {e}");
        }
        for q in ["state=open", "state=NEW", "priority=p1", "priority=P5"] {
            let e = rejected(q);
            assert!(e.contains("invalid"), "{q}: {e}");
        }
        let e = rejected("creator.email=tester@example.com");
        assert!(e.contains("quoted string"), "{e}");
        let e = rejected("update_time>2026");
        assert!(e.contains("quoted string"), "{e}");
    }

    #[test]
    fn update_time_is_snake_case_and_greater_than_only() {
        let e = rejected(r#"updateTime>"2026-01-01T00:00:00Z""#);
        assert!(e.contains("update_time"), "{e}");
        for op in [">=", "<", "<=", "=", "!=", ":"] {
            let q = format!(r#"update_time{op}"2026-01-01T00:00:00Z""#);
            let e = rejected(&q);
            assert!(e.contains("greater than"), "{q}: {e}");
        }
        for t in [
            "yesterday",
            "2026-01-01T00:00:00",
            "2026-01-01",
            "2026-01-01 00:00:00Z",
            "2026-01-01t00:00:00z",
            "2026-01-01T00:00:00.5Z",
            "2026-01-01T00:00:00+0100",
            "2026-13-01T00:00:00Z",
        ] {
            let q = format!(r#"update_time>"{t}""#);
            let e = rejected(&q);
            assert!(e.contains("invalid time"), "{q}: {e}");
        }
    }

    #[test]
    fn unknown_fields_are_rejected() {
        for q in [
            "foo=bar",
            r#"organization="organizations/1""#,
            r#"project="projects/p""#,
            r#"displayName="x""#,
            r#"creator.name="x""#,
        ] {
            let e = rejected(q);
            assert!(e.contains("unknown field"), "{q}: {e}");
        }
        assert!(
            parse(r#"update_time>"2026-01-01T00:00:00Z""#, Dialect::ListFilter)
                .unwrap_err()
                .contains("unknown field")
        );
    }

    #[test]
    fn other_malformed_queries_are_rejected() {
        for q in [
            "state=",
            "state",
            "disk",
            "(state=OPEN",
            "state=OPEN)",
            "(priority=P0 OR priority=P1",
            r#""unterminated"#,
            r#""bad \n escape""#,
            "AND state=OPEN",
            "state=OPEN AND",
            "priority>P1",
            "NOT state=OPEN",
            "-state=OPEN",
            r#""""#,
            "state = OPEN",
            "state =OPEN",
            "state= OPEN",
            "state=OPEN  AND priority=P1",
            "state=OPEN\tAND priority=P1",
            " state=OPEN",
            "state=OPEN ",
            "   ",
            "state=OPEN AND ( priority=P0 OR priority=P1)",
            "state=OPEN AND (priority=P0 OR priority=P1 )",
        ] {
            assert!(parse(q, Dialect::Search).is_err(), "{q:?} should fail");
        }
        assert_eq!(parse("", Dialect::Search), Ok(None));
        assert!(parse(r#""text""#, Dialect::ListFilter).is_err());
    }

    #[test]
    fn classification_queries() {
        assert!(glob_match(
            "*compute*",
            "Compute > Compute Engine > Instance"
        ));
        assert!(glob_match(
            "Compute*Instance",
            "Compute > Compute Engine > Instance"
        ));
        assert!(!glob_match(
            "*Storage*",
            "Compute > Compute Engine > Instance"
        ));
        let m = classification_matcher(r#"display_name:"*Compute Engine*""#).unwrap();
        assert_eq!(
            m,
            vec![ClassificationTerm {
                field: "display_name",
                value: "*Compute Engine*".into(),
                wildcard: true
            }]
        );
        let m = classification_matcher(r#"display_name:"*Compute*" AND id="X""#).unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(classification_matcher(""), Ok(vec![]));
        for q in [
            "bogus",
            r#"display_name:"a" id="X""#,
            r#"display_name:"a" and id="X""#,
            r#"displayName:"a""#,
            "display_name:Compute",
            r#"id:"X""#,
            r#"display_name : "a""#,
        ] {
            assert!(classification_matcher(q).is_err(), "{q}");
        }
    }
}
