//! The `cases.search` query and `cases.list` filter languages.
//!
//! casesync polls with `update_time>"…"` and looks cases up by `creator.email="…"`
//! plus a quoted marker line, so these have to behave like the documented grammar:
//! restrictions joined by `AND` (or juxtaposition), `OR` and parentheses, `state`
//! (`OPEN`/`CLOSED`), `priority` (`P0`..`P4`), `creator.email`, `update_time` with
//! an RFC 3339 time that carries an offset, and bare (quoted) free text matched
//! against display name, description and comment bodies. As in AIP-160, `OR` binds
//! tighter than `AND`. Anything else is rejected, the way the real API answers 400.
//! `update_time>=` is accepted in addition to the documented `>`.

use chrono::{DateTime, Utc};

use crate::model::{CaseState, CaseVersion, CommentRecord, Priority};

/// Which of the two grammars is parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `cases.search?query=`: everything, free text and `update_time` included.
    Search,
    /// `cases.list?filter=`: only `state`, `priority`, `creator.email`.
    ListFilter,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateFilter {
    Open,
    Closed,
    Exact(CaseState),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    State(StateFilter),
    Priority(Priority),
    CreatorEmail(String),
    UpdatedAfter {
        time: DateTime<Utc>,
        inclusive: bool,
    },
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
            Expr::State(StateFilter::Exact(s)) => v.version.state == *s,
            Expr::Priority(p) => v.version.priority == *p,
            Expr::CreatorEmail(e) => v.creator_email.is_some_and(|c| c.eq_ignore_ascii_case(e)),
            Expr::UpdatedAfter { time, inclusive } => {
                if *inclusive {
                    v.version.update_time >= *time
                } else {
                    v.version.update_time > *time
                }
            }
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
enum Tok {
    LParen,
    RParen,
    Op(&'static str),
    Str(String),
    Word(String),
}

fn tokenize(q: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let mut chars = q.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' => {
                chars.next();
                out.push(Tok::LParen);
            }
            ')' => {
                chars.next();
                out.push(Tok::RParen);
            }
            '"' => {
                chars.next();
                let mut s = String::new();
                let mut closed = false;
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => match chars.next() {
                            Some(e) => s.push(e),
                            None => return Err("unterminated escape in string".into()),
                        },
                        '"' => {
                            closed = true;
                            break;
                        }
                        c => s.push(c),
                    }
                }
                if !closed {
                    return Err("unterminated string literal".into());
                }
                out.push(Tok::Str(s));
            }
            '=' | ':' => {
                chars.next();
                out.push(Tok::Op(if c == '=' { "=" } else { ":" }));
            }
            '>' | '<' | '!' => {
                chars.next();
                let eq = chars.peek() == Some(&'=');
                if eq {
                    chars.next();
                }
                out.push(Tok::Op(match (c, eq) {
                    ('>', false) => ">",
                    ('>', true) => ">=",
                    ('<', false) => "<",
                    ('<', true) => "<=",
                    ('!', true) => "!=",
                    _ => return Err("unexpected '!'".into()),
                }));
            }
            _ => {
                let mut w = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || "()\"=:<>!".contains(c) {
                        break;
                    }
                    w.push(c);
                    chars.next();
                }
                out.push(Tok::Word(w));
            }
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    dialect: Dialect,
}

/// Parses a query; `Ok(None)` for an empty one (no filtering).
pub fn parse(q: &str, dialect: Dialect) -> Result<Option<Expr>, String> {
    let toks = tokenize(q)?;
    if toks.is_empty() {
        return Ok(None);
    }
    let mut p = Parser {
        toks,
        pos: 0,
        dialect,
    };
    let e = p.and_expr()?;
    if p.pos < p.toks.len() {
        return Err(format!("unexpected token {:?}", p.toks[p.pos]));
    }
    Ok(Some(e))
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn is_keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w == kw)
    }

    fn and_expr(&mut self) -> Result<Expr, String> {
        let mut terms = vec![self.or_expr()?];
        loop {
            if self.is_keyword("AND") {
                self.pos += 1;
                terms.push(self.or_expr()?);
            } else if matches!(self.peek(), None | Some(Tok::RParen)) {
                break;
            } else {
                // Juxtaposition is an implicit AND.
                terms.push(self.or_expr()?);
            }
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            Expr::And(terms)
        })
    }

    fn or_expr(&mut self) -> Result<Expr, String> {
        let mut terms = vec![self.term()?];
        while self.is_keyword("OR") {
            self.pos += 1;
            terms.push(self.term()?);
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            Expr::Or(terms)
        })
    }

    fn term(&mut self) -> Result<Expr, String> {
        match self.next() {
            Some(Tok::LParen) => {
                let e = self.and_expr()?;
                match self.next() {
                    Some(Tok::RParen) => Ok(e),
                    _ => Err("missing ')'".into()),
                }
            }
            Some(Tok::Str(s)) => self.text(s),
            Some(Tok::Word(w)) => {
                if w == "AND" || w == "OR" || w == "NOT" {
                    return Err(format!("unexpected keyword {w}"));
                }
                if let Some(Tok::Op(op)) = self.peek().cloned() {
                    self.pos += 1;
                    let value = match self.next() {
                        Some(Tok::Str(s)) => s,
                        Some(Tok::Word(v)) if v != "AND" && v != "OR" => v,
                        _ => return Err(format!("missing value after {w}{op}")),
                    };
                    self.restriction(&w, op, &value)
                } else {
                    if w.starts_with('-') {
                        return Err("negation is not supported".into());
                    }
                    self.text(w)
                }
            }
            Some(t) => Err(format!("unexpected token {t:?}")),
            None => Err("unexpected end of query".into()),
        }
    }

    fn text(&self, s: String) -> Result<Expr, String> {
        match self.dialect {
            Dialect::Search => Ok(Expr::Text(s)),
            Dialect::ListFilter => Err("free text is not supported in a filter".into()),
        }
    }

    fn restriction(&self, field: &str, op: &str, value: &str) -> Result<Expr, String> {
        match field {
            "state" => {
                expect_eq(field, op)?;
                match value.to_ascii_uppercase().as_str() {
                    "OPEN" => Ok(Expr::State(StateFilter::Open)),
                    "CLOSED" => Ok(Expr::State(StateFilter::Closed)),
                    other => match CaseState::parse(other) {
                        Some(s) if s != CaseState::Unspecified => {
                            Ok(Expr::State(StateFilter::Exact(s)))
                        }
                        _ => Err(format!("invalid state value {value:?}")),
                    },
                }
            }
            "priority" => {
                expect_eq(field, op)?;
                Priority::parse_set(value)
                    .map(Expr::Priority)
                    .ok_or_else(|| format!("invalid priority value {value:?}"))
            }
            "creator.email" => {
                expect_eq(field, op)?;
                if value.is_empty() {
                    return Err("empty creator.email".into());
                }
                Ok(Expr::CreatorEmail(value.to_string()))
            }
            "update_time" | "updateTime" if self.dialect == Dialect::Search => {
                let inclusive = match op {
                    ">" => false,
                    ">=" => true,
                    _ => return Err(format!("update_time only supports '>', not '{op}'")),
                };
                let time = DateTime::parse_from_rfc3339(value)
                    .map_err(|e| format!("invalid RFC 3339 time {value:?} for update_time: {e}"))?
                    .with_timezone(&Utc);
                Ok(Expr::UpdatedAfter { time, inclusive })
            }
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

/// Matches a `caseClassifications.search` query: `display_name:"*Compute*"` (`*`
/// wildcards, case-insensitive), `display_name="exact"`, `id="…"`, joined by `AND`.
pub fn classification_matcher(q: &str) -> Result<Vec<(String, String, bool)>, String> {
    let toks = tokenize(q)?;
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        match (&toks[i], toks.get(i + 1), toks.get(i + 2)) {
            (Tok::Word(w), _, _) if w == "AND" && !out.is_empty() => {
                i += 1;
                continue;
            }
            (Tok::Word(field), Some(Tok::Op(op)), Some(Tok::Str(v) | Tok::Word(v))) => {
                let field = match field.as_str() {
                    "display_name" | "displayName" => "display_name",
                    "id" => "id",
                    other => return Err(format!("unknown field {other:?}")),
                };
                let wildcard = match *op {
                    ":" => true,
                    "=" => false,
                    other => return Err(format!("unsupported operator {other:?}")),
                };
                out.push((field.to_string(), v.clone(), wildcard));
                i += 3;
            }
            (t, _, _) => return Err(format!("unexpected token {t:?}")),
        }
    }
    Ok(out)
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
    use crate::model::Actor;

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
        let e = parse(q, Dialect::Search).unwrap().unwrap();
        e.matches(&CaseView {
            version: v,
            creator_email: Some("Tester@Example.com"),
            comments: &comments,
        })
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
        assert!(!eval("priority=P0 OR priority=P2", &v));
        assert!(eval(r#"update_time>"2020-01-01T00:00:00-05:00""#, &v));
    }

    #[test]
    fn update_time_honours_offsets_and_strictness() {
        let v = version(CaseState::New, Priority::P1, "2026-03-01T00:00:00Z");
        assert!(!eval(r#"update_time>"2026-03-01T00:00:00Z""#, &v));
        assert!(eval(r#"update_time>="2026-03-01T00:00:00Z""#, &v));
        // 2026-02-28T17:00:00-07:00 is exactly the update time.
        assert!(!eval(r#"update_time>"2026-02-28T17:00:00-07:00""#, &v));
        assert!(eval(r#"update_time>"2026-02-28T16:59:59-07:00""#, &v));
        assert!(eval(r#"update_time>"2026-03-01T00:59:59+01:00""#, &v));
        assert!(eval(
            r#"updateTime>"2026-02-01T00:00:00+00:00" state=OPEN"#,
            &v
        ));
    }

    #[test]
    fn free_text_covers_description_and_comments() {
        let v = version(CaseState::Closed, Priority::P3, "2026-03-01T00:00:00Z");
        assert!(eval(r#""persistent DISK""#, &v));
        assert!(eval(r#""casesync: jira case ABC-1" AND state=CLOSED"#, &v));
        assert!(!eval(r#""no such text""#, &v));
    }

    #[test]
    fn bad_queries_are_rejected() {
        for q in [
            "state=",
            "state=BOGUS",
            "priority=P7",
            "foo=bar",
            "(state=OPEN",
            "state=OPEN)",
            r#"update_time<"2026-01-01T00:00:00Z""#,
            r#"update_time>"yesterday""#,
            r#"update_time>"2026-01-01T00:00:00""#,
            r#""unterminated"#,
            "AND state=OPEN",
            "state=OPEN AND",
            "priority>P1",
        ] {
            assert!(parse(q, Dialect::Search).is_err(), "{q} should fail");
        }
        assert_eq!(parse("   ", Dialect::Search), Ok(None));
        assert!(parse(r#""text""#, Dialect::ListFilter).is_err());
        assert!(parse(r#"update_time>"2026-01-01T00:00:00Z""#, Dialect::ListFilter).is_err());
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
        assert_eq!(m.len(), 1);
        assert!(classification_matcher("bogus").is_err());
    }
}
