//! A JQL subset: the clauses a CRM connector really sends (project, key, labels, status
//! category, the sync flag as `cf[N]`, by id or by name, `updated`/`created` ranges,
//! AND/OR/NOT, ORDER BY), parsed and checked the way Jira does it. The details that trip
//! real clients are reproduced on purpose: date literals have minute precision and are
//! read in the site's time zone, text fields refuse `=`, an unknown option or status is a
//! 400, and a query without a restriction is refused as unbounded.

use std::cmp::Ordering;

use chrono::{DateTime, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::config::StatusCategory;
use crate::model::{
    PROJECT_ID, PROJECT_NAME, SYNC_OPTION_ID, SYNC_OPTION_VALUE, SearchDoc,
    issue_type_by_name_or_id, priority_by_name_or_id, resolution_by_name_or_id,
};
use crate::state::State;

const VALID_OPERATORS: &str = "The valid operators are '=', '!=', '<', '>', '<=', '>=', '~', '!~', 'IN', 'NOT IN', 'IS' and 'IS NOT'.";
const MAX_ORDER_FIELDS: usize = 7;
/// Stands for "no value" inside a value set (e.g. `resolution = Unresolved`).
const EMPTY_SENTINEL: &str = "\u{0}empty";

/// A JQL error; the text is what Jira puts into `errorMessages`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JqlError(pub String);

fn syntax(message: String, pos: usize) -> JqlError {
    JqlError(format!(
        "Error in the JQL Query: {message} (line 1, character {pos})"
    ))
}

/// What a query is evaluated against besides the issues: the site (time zone, fields,
/// statuses, users), the clock, and the caller for `currentUser()`.
pub(crate) struct JqlContext<'a> {
    pub state: &'a State,
    pub now: DateTime<Utc>,
    pub caller: &'a str,
}

impl JqlContext<'_> {
    fn tz(&self) -> Tz {
        self.state.tz
    }
}

// ---------------------------------------------------------------------------------------
// Lexer

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    LParen,
    RParen,
    Comma,
    LBracket,
    RBracket,
    Op(&'static str),
    AndSym,
    OrSym,
    NotSym,
    End,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    /// 1-based character position, as in Jira's messages.
    pos: usize,
}

impl Token {
    fn text(&self) -> String {
        match &self.tok {
            Tok::Word(w) => w.clone(),
            Tok::Str(s) => s.clone(),
            Tok::LParen => "(".into(),
            Tok::RParen => ")".into(),
            Tok::Comma => ",".into(),
            Tok::LBracket => "[".into(),
            Tok::RBracket => "]".into(),
            Tok::Op(op) => (*op).into(),
            Tok::AndSym => "&&".into(),
            Tok::OrSym => "||".into(),
            Tok::NotSym => "!".into(),
            Tok::End => String::new(),
        }
    }

    fn keyword(&self, kw: &str) -> bool {
        matches!(&self.tok, Tok::Word(w) if w.eq_ignore_ascii_case(kw))
    }
}

const RESERVED_WORDS: [&str; 9] = [
    "and", "or", "not", "in", "is", "order", "by", "empty", "null",
];

fn is_word_char(c: char) -> bool {
    !c.is_whitespace() && !"()[],=!<>~\"'&|".contains(c)
}

fn lex(input: &str) -> Result<Vec<Token>, JqlError> {
    let chars: Vec<char> = input.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let pos = i + 1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let single = |tok| Token { tok, pos };
        match c {
            '"' | '\'' => {
                let mut text = String::new();
                let mut j = i + 1;
                let mut closed = false;
                while j < chars.len() {
                    match chars[j] {
                        '\\' if j + 1 < chars.len() => {
                            text.push(match chars[j + 1] {
                                'n' => '\n',
                                't' => '\t',
                                other => other,
                            });
                            j += 2;
                        }
                        q if q == c => {
                            closed = true;
                            j += 1;
                            break;
                        }
                        other => {
                            text.push(other);
                            j += 1;
                        }
                    }
                }
                if !closed {
                    return Err(syntax(
                        format!("The quoted string '{text}' has not been completed."),
                        pos,
                    ));
                }
                tokens.push(Token {
                    tok: Tok::Str(text),
                    pos,
                });
                i = j;
            }
            '(' => {
                tokens.push(single(Tok::LParen));
                i += 1;
            }
            ')' => {
                tokens.push(single(Tok::RParen));
                i += 1;
            }
            ',' => {
                tokens.push(single(Tok::Comma));
                i += 1;
            }
            '[' => {
                tokens.push(single(Tok::LBracket));
                i += 1;
            }
            ']' => {
                tokens.push(single(Tok::RBracket));
                i += 1;
            }
            '=' => {
                tokens.push(single(Tok::Op("=")));
                i += 1;
            }
            '~' => {
                tokens.push(single(Tok::Op("~")));
                i += 1;
            }
            '!' | '<' | '>' => {
                let next = chars.get(i + 1).copied();
                let (tok, len) = match (c, next) {
                    ('!', Some('=')) => (Tok::Op("!="), 2),
                    ('!', Some('~')) => (Tok::Op("!~"), 2),
                    ('!', _) => (Tok::NotSym, 1),
                    ('<', Some('=')) => (Tok::Op("<="), 2),
                    ('<', _) => (Tok::Op("<"), 1),
                    ('>', Some('=')) => (Tok::Op(">="), 2),
                    _ => (Tok::Op(">"), 1),
                };
                tokens.push(single(tok));
                i += len;
            }
            '&' | '|' => {
                let doubled = chars.get(i + 1) == Some(&c);
                tokens.push(single(if c == '&' { Tok::AndSym } else { Tok::OrSym }));
                i += if doubled { 2 } else { 1 };
            }
            _ => {
                let mut j = i;
                while j < chars.len() && is_word_char(chars[j]) {
                    j += 1;
                }
                tokens.push(Token {
                    tok: Tok::Word(chars[i..j].iter().collect()),
                    pos,
                });
                i = j;
            }
        }
    }
    tokens.push(Token {
        tok: Tok::End,
        pos: chars.len() + 1,
    });
    Ok(tokens)
}

// ---------------------------------------------------------------------------------------
// Parser (syntax only; names and values are resolved in `compile`)

#[derive(Debug, Clone)]
enum FieldName {
    Plain(String),
    Cf(String),
}

impl FieldName {
    fn display(&self) -> String {
        match self {
            FieldName::Plain(name) => name.clone(),
            FieldName::Cf(n) => format!("cf[{n}]"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpKind {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Like,
    NotLike,
    In,
    NotIn,
    Is,
    IsNot,
}

impl OpKind {
    fn display(self) -> &'static str {
        match self {
            OpKind::Eq => "=",
            OpKind::Ne => "!=",
            OpKind::Lt => "<",
            OpKind::Le => "<=",
            OpKind::Gt => ">",
            OpKind::Ge => ">=",
            OpKind::Like => "~",
            OpKind::NotLike => "!~",
            OpKind::In => "in",
            OpKind::NotIn => "not in",
            OpKind::Is => "is",
            OpKind::IsNot => "is not",
        }
    }
}

#[derive(Debug, Clone)]
enum Val {
    Text(String),
    Func(String, Vec<String>),
}

impl Val {
    fn display(&self) -> String {
        match self {
            Val::Text(t) => t.clone(),
            Val::Func(name, args) => format!("{name}({})", args.join(", ")),
        }
    }
}

#[derive(Debug, Clone)]
enum Operand {
    Value(Val),
    List(Vec<Val>),
    Empty,
}

#[derive(Debug, Clone)]
enum Ast {
    And(Vec<Ast>),
    Or(Vec<Ast>),
    Not(Box<Ast>),
    Clause {
        field: FieldName,
        op: OpKind,
        operand: Operand,
    },
}

/// The filter (if any) and the ORDER BY fields with their direction (true = ascending).
type ParsedQuery = (Option<Ast>, Vec<(FieldName, bool)>);

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> &Token {
        // lex always ends the stream with End, and `at` never moves past it.
        &self.tokens[self.at.min(self.tokens.len() - 1)]
    }

    fn bump(&mut self) -> Token {
        let token = self.peek().clone();
        if token.tok != Tok::End {
            self.at += 1;
        }
        token
    }

    fn is_and(&self) -> bool {
        self.peek().tok == Tok::AndSym || self.peek().keyword("and")
    }

    fn is_or(&self) -> bool {
        self.peek().tok == Tok::OrSym || self.peek().keyword("or")
    }

    fn parse_query(&mut self) -> Result<ParsedQuery, JqlError> {
        let filter = if self.peek().keyword("order") || self.peek().tok == Tok::End {
            None
        } else {
            Some(self.parse_or()?)
        };
        let mut order = Vec::new();
        if self.peek().keyword("order") {
            self.bump();
            let by = self.bump();
            if !by.keyword("by") {
                return Err(syntax(
                    format!("Expecting 'by' but got '{}'.", by.text()),
                    by.pos,
                ));
            }
            loop {
                let field = self.parse_field()?;
                let mut ascending = true;
                if self.peek().keyword("asc") {
                    self.bump();
                } else if self.peek().keyword("desc") {
                    self.bump();
                    ascending = false;
                }
                order.push((field, ascending));
                if self.peek().tok == Tok::Comma {
                    self.bump();
                } else {
                    break;
                }
            }
        }
        let end = self.peek().clone();
        if end.tok != Tok::End {
            return Err(syntax(
                format!("Expecting either 'OR' or 'AND' but got '{}'.", end.text()),
                end.pos,
            ));
        }
        Ok((filter, order))
    }

    fn parse_or(&mut self) -> Result<Ast, JqlError> {
        let mut items = vec![self.parse_and()?];
        while self.is_or() {
            self.bump();
            items.push(self.parse_and()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Ast::Or(items)
        })
    }

    fn parse_and(&mut self) -> Result<Ast, JqlError> {
        let mut items = vec![self.parse_unary()?];
        while self.is_and() {
            self.bump();
            items.push(self.parse_unary()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Ast::And(items)
        })
    }

    fn parse_unary(&mut self) -> Result<Ast, JqlError> {
        if self.peek().tok == Tok::NotSym || self.peek().keyword("not") {
            self.bump();
            return Ok(Ast::Not(Box::new(self.parse_unary()?)));
        }
        if self.peek().tok == Tok::LParen {
            self.bump();
            let inner = self.parse_or()?;
            let close = self.bump();
            if close.tok != Tok::RParen {
                return Err(if close.tok == Tok::End {
                    JqlError(
                        "Error in the JQL Query: Expecting ')' before the end of the query."
                            .to_string(),
                    )
                } else {
                    syntax(
                        format!("Expecting ')' but got '{}'.", close.text()),
                        close.pos,
                    )
                });
            }
            return Ok(inner);
        }
        self.parse_clause()
    }

    fn parse_field(&mut self) -> Result<FieldName, JqlError> {
        let token = self.bump();
        match &token.tok {
            Tok::Word(w) if w.eq_ignore_ascii_case("cf") && self.peek().tok == Tok::LBracket => {
                self.bump();
                let number = self.bump();
                let close = self.bump();
                match (&number.tok, &close.tok) {
                    (Tok::Word(n), Tok::RBracket) if n.chars().all(|c| c.is_ascii_digit()) => {
                        Ok(FieldName::Cf(n.clone()))
                    }
                    _ => Err(syntax(
                        format!(
                            "Expecting a custom field id like 'cf[10000]' but got '{}'.",
                            number.text()
                        ),
                        number.pos,
                    )),
                }
            }
            Tok::Word(w) if !RESERVED_WORDS.iter().any(|r| r.eq_ignore_ascii_case(w)) => {
                Ok(FieldName::Plain(w.clone()))
            }
            Tok::Str(s) => Ok(FieldName::Plain(s.clone())),
            Tok::End => Err(JqlError(
                "Error in the JQL Query: Expecting a field name before the end of the query."
                    .to_string(),
            )),
            _ => Err(syntax(
                format!("Expecting a field name but got '{}'.", token.text()),
                token.pos,
            )),
        }
    }

    fn parse_operator(&mut self) -> Result<OpKind, JqlError> {
        let token = self.bump();
        let op = match &token.tok {
            Tok::Op("=") => OpKind::Eq,
            Tok::Op("!=") => OpKind::Ne,
            Tok::Op("<") => OpKind::Lt,
            Tok::Op("<=") => OpKind::Le,
            Tok::Op(">") => OpKind::Gt,
            Tok::Op(">=") => OpKind::Ge,
            Tok::Op("~") => OpKind::Like,
            Tok::Op("!~") => OpKind::NotLike,
            _ if token.keyword("in") => OpKind::In,
            _ if token.keyword("not") && self.peek().keyword("in") => {
                self.bump();
                OpKind::NotIn
            }
            _ if token.keyword("is") => {
                if self.peek().keyword("not") {
                    self.bump();
                    OpKind::IsNot
                } else {
                    OpKind::Is
                }
            }
            Tok::End => {
                return Err(JqlError(format!(
                    "Error in the JQL Query: Expecting operator before the end of the query. {VALID_OPERATORS}"
                )));
            }
            _ => {
                return Err(syntax(
                    format!(
                        "Expecting operator but got '{}'. {VALID_OPERATORS}",
                        token.text()
                    ),
                    token.pos,
                ));
            }
        };
        Ok(op)
    }

    fn parse_value(&mut self) -> Result<Val, JqlError> {
        let token = self.bump();
        match &token.tok {
            Tok::Str(s) => Ok(Val::Text(s.clone())),
            Tok::Word(w)
                if !RESERVED_WORDS[..7]
                    .iter()
                    .any(|r| r.eq_ignore_ascii_case(w)) =>
            {
                if self.peek().tok == Tok::LParen {
                    self.bump();
                    let mut args = Vec::new();
                    loop {
                        let arg = self.bump();
                        match &arg.tok {
                            Tok::RParen if args.is_empty() => break,
                            Tok::Word(a) | Tok::Str(a) => args.push(a.clone()),
                            _ => {
                                return Err(syntax(
                                    format!(
                                        "Expecting a function argument but got '{}'.",
                                        arg.text()
                                    ),
                                    arg.pos,
                                ));
                            }
                        }
                        let sep = self.bump();
                        match sep.tok {
                            Tok::Comma => {}
                            Tok::RParen => break,
                            _ => {
                                return Err(syntax(
                                    format!("Expecting ',' or ')' but got '{}'.", sep.text()),
                                    sep.pos,
                                ));
                            }
                        }
                    }
                    Ok(Val::Func(w.clone(), args))
                } else {
                    Ok(Val::Text(w.clone()))
                }
            }
            Tok::End => Err(JqlError(
                "Error in the JQL Query: Expecting either a value, list or function before the end of the query."
                    .to_string(),
            )),
            _ => {
                let text = token.text();
                Err(syntax(
                    format!(
                        "Expecting either a value, list or function but got '{text}'. You must surround '{text}' in quotation marks to use it as a value."
                    ),
                    token.pos,
                ))
            }
        }
    }

    fn parse_clause(&mut self) -> Result<Ast, JqlError> {
        let field = self.parse_field()?;
        let op = self.parse_operator()?;
        let operand = match op {
            OpKind::Is | OpKind::IsNot => {
                let token = self.bump();
                if token.keyword("empty") || token.keyword("null") {
                    Operand::Empty
                } else {
                    return Err(syntax(
                        format!("Expecting 'EMPTY' or 'NULL' but got '{}'.", token.text()),
                        token.pos,
                    ));
                }
            }
            OpKind::In | OpKind::NotIn => {
                let open = self.bump();
                if open.tok != Tok::LParen {
                    return Err(syntax(
                        format!("Expecting '(' but got '{}'.", open.text()),
                        open.pos,
                    ));
                }
                let mut values = vec![self.parse_value()?];
                loop {
                    let sep = self.bump();
                    match sep.tok {
                        Tok::Comma => values.push(self.parse_value()?),
                        Tok::RParen => break,
                        _ => {
                            return Err(syntax(
                                format!("Expecting ',' or ')' but got '{}'.", sep.text()),
                                sep.pos,
                            ));
                        }
                    }
                }
                Operand::List(values)
            }
            _ => {
                if self.peek().keyword("empty") || self.peek().keyword("null") {
                    self.bump();
                    Operand::Empty
                } else {
                    Operand::Value(self.parse_value()?)
                }
            }
        };
        Ok(Ast::Clause { field, op, operand })
    }
}

// ---------------------------------------------------------------------------------------
// Compiled query

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    Project,
    Key,
    Summary,
    Description,
    Text,
    Comment,
    Status,
    StatusCategory,
    Priority,
    IssueType,
    Resolution,
    Labels,
    Component,
    Reporter,
    Creator,
    Created,
    Updated,
    SyncFlag,
    GoogleCase,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Discrete,
    Ordered,
    Date,
    Text,
}

impl Field {
    fn kind(self) -> Kind {
        match self {
            Field::Summary
            | Field::Description
            | Field::Text
            | Field::Comment
            | Field::GoogleCase => Kind::Text,
            Field::Created | Field::Updated => Kind::Date,
            Field::Key | Field::Priority => Kind::Ordered,
            _ => Kind::Discrete,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone)]
pub(crate) enum Test {
    AnyOf(Vec<String>),
    NoneOf(Vec<String>),
    Empty,
    NotEmpty,
    Compare(Cmp, i64),
    Contains(String),
    NotContains(String),
}

#[derive(Debug, Clone)]
pub(crate) enum Pred {
    And(Vec<Pred>),
    Or(Vec<Pred>),
    Not(Box<Pred>),
    Test(Field, Test),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SortField {
    Updated,
    Created,
    Key,
    Priority,
    Summary,
}

/// One sort value; the search's page token carries the last one it returned.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(untagged)]
pub(crate) enum SortVal {
    Int(i64),
    Str(String),
}

#[derive(Debug, Clone)]
pub(crate) struct Query {
    pub filter: Option<Pred>,
    pub order: Vec<(SortField, bool)>,
}

/// Parses and checks a JQL string against the site.
pub(crate) fn parse(jql: &str, ctx: &JqlContext) -> Result<Query, JqlError> {
    let tokens = lex(jql)?;
    let mut parser = Parser { tokens, at: 0 };
    let (filter, order) = parser.parse_query()?;
    if order.len() > MAX_ORDER_FIELDS {
        return Err(JqlError(format!(
            "The ORDER BY clause can contain a maximum of {MAX_ORDER_FIELDS} fields."
        )));
    }
    let filter = filter.map(|ast| compile(&ast, ctx)).transpose()?;
    let mut sort = Vec::new();
    for (field, ascending) in order {
        sort.push((sort_field(&field, ctx)?, ascending));
    }
    if sort.is_empty() {
        sort.push((SortField::Key, false));
    }
    Ok(Query {
        filter,
        order: sort,
    })
}

fn sort_field(field: &FieldName, ctx: &JqlContext) -> Result<SortField, JqlError> {
    let resolved = resolve_field(field, ctx)?;
    match resolved {
        Field::Updated => Ok(SortField::Updated),
        Field::Created => Ok(SortField::Created),
        Field::Key => Ok(SortField::Key),
        Field::Priority => Ok(SortField::Priority),
        Field::Summary => Ok(SortField::Summary),
        _ => Err(JqlError(format!(
            "Not able to sort using field '{}'.",
            field.display()
        ))),
    }
}

fn unknown_field(name: &str) -> JqlError {
    JqlError(format!(
        "Field '{name}' does not exist or you do not have permission to view it."
    ))
}

fn resolve_field(field: &FieldName, ctx: &JqlContext) -> Result<Field, JqlError> {
    let config = &ctx.state.config;
    let custom = |id: &str| -> Option<Field> {
        if id == config.sync_flag_field {
            Some(Field::SyncFlag)
        } else if id == config.google_case_field {
            Some(Field::GoogleCase)
        } else {
            None
        }
    };
    match field {
        FieldName::Cf(n) => {
            custom(&format!("customfield_{n}")).ok_or_else(|| unknown_field(&field.display()))
        }
        FieldName::Plain(name) => {
            let lower = name.to_ascii_lowercase();
            let builtin = match lower.as_str() {
                "project" => Some(Field::Project),
                "key" | "issuekey" | "issue" | "id" => Some(Field::Key),
                "summary" => Some(Field::Summary),
                "description" => Some(Field::Description),
                "text" => Some(Field::Text),
                "comment" => Some(Field::Comment),
                "status" => Some(Field::Status),
                "statuscategory" => Some(Field::StatusCategory),
                "priority" => Some(Field::Priority),
                "issuetype" | "type" => Some(Field::IssueType),
                "resolution" => Some(Field::Resolution),
                "labels" => Some(Field::Labels),
                "component" => Some(Field::Component),
                "reporter" => Some(Field::Reporter),
                "creator" => Some(Field::Creator),
                "created" | "createddate" => Some(Field::Created),
                "updated" | "updateddate" => Some(Field::Updated),
                _ => None,
            };
            if let Some(f) = builtin {
                return Ok(f);
            }
            if let Some(f) = custom(name) {
                return Ok(f);
            }
            // A custom field by name, optionally with its type in brackets, the way
            // Jira's JQL editor disambiguates fields of the same name.
            let (bare, type_hint) = match name.strip_suffix(']').and_then(|n| n.rsplit_once('[')) {
                Some((bare, hint)) => (bare.trim(), Some(hint.trim().to_ascii_lowercase())),
                None => (name.trim(), None),
            };
            let flag_types = ["checkboxes"];
            let text_types = ["short text", "text field (single line)"];
            if bare.eq_ignore_ascii_case(&config.sync_flag_field_name)
                && type_hint.as_deref().is_none_or(|h| flag_types.contains(&h))
            {
                return Ok(Field::SyncFlag);
            }
            if bare.eq_ignore_ascii_case(&config.google_case_field_name)
                && type_hint.as_deref().is_none_or(|h| text_types.contains(&h))
            {
                return Ok(Field::GoogleCase);
            }
            Err(unknown_field(name))
        }
    }
}

fn compile(ast: &Ast, ctx: &JqlContext) -> Result<Pred, JqlError> {
    match ast {
        Ast::And(items) => Ok(Pred::And(
            items
                .iter()
                .map(|a| compile(a, ctx))
                .collect::<Result<_, _>>()?,
        )),
        Ast::Or(items) => Ok(Pred::Or(
            items
                .iter()
                .map(|a| compile(a, ctx))
                .collect::<Result<_, _>>()?,
        )),
        Ast::Not(inner) => Ok(Pred::Not(Box::new(compile(inner, ctx)?))),
        Ast::Clause { field, op, operand } => compile_clause(field, *op, operand, ctx),
    }
}

fn compile_clause(
    name: &FieldName,
    op: OpKind,
    operand: &Operand,
    ctx: &JqlContext,
) -> Result<Pred, JqlError> {
    let field = resolve_field(name, ctx)?;
    let display = name.display();
    let unsupported = || {
        JqlError(format!(
            "The operator '{}' is not supported by the '{display}' field.",
            op.display()
        ))
    };
    let kind = field.kind();
    let allowed = match kind {
        Kind::Text => matches!(
            op,
            OpKind::Like | OpKind::NotLike | OpKind::Is | OpKind::IsNot
        ),
        Kind::Date => !matches!(
            op,
            OpKind::Like | OpKind::NotLike | OpKind::In | OpKind::NotIn
        ),
        Kind::Ordered => !matches!(op, OpKind::Like | OpKind::NotLike),
        Kind::Discrete => matches!(
            op,
            OpKind::Eq | OpKind::Ne | OpKind::In | OpKind::NotIn | OpKind::Is | OpKind::IsNot
        ),
    };
    if !allowed {
        return Err(unsupported());
    }
    let test = match (op, operand) {
        (OpKind::Is | OpKind::Eq, Operand::Empty) => Test::Empty,
        (OpKind::IsNot | OpKind::Ne, Operand::Empty) => Test::NotEmpty,
        (_, Operand::Empty) => {
            return Err(JqlError(format!(
                "The operator '{}' does not support the value 'EMPTY'.",
                op.display()
            )));
        }
        (OpKind::Like | OpKind::NotLike, Operand::Value(val)) => {
            let Val::Text(text) = val else {
                return Err(unsupported());
            };
            let term: String = text
                .chars()
                .filter(|c| !matches!(c, '*' | '?'))
                .collect::<String>()
                .trim()
                .to_lowercase();
            if term.is_empty() {
                return Err(JqlError(format!(
                    "The field '{display}' does not support searching for an empty string."
                )));
            }
            if op == OpKind::Like {
                Test::Contains(term)
            } else {
                Test::NotContains(term)
            }
        }
        (OpKind::Lt | OpKind::Le | OpKind::Gt | OpKind::Ge, Operand::Value(val))
        | (OpKind::Eq | OpKind::Ne, Operand::Value(val))
            if kind == Kind::Date =>
        {
            let cmp = match op {
                OpKind::Eq => Cmp::Eq,
                OpKind::Ne => Cmp::Ne,
                OpKind::Lt => Cmp::Lt,
                OpKind::Le => Cmp::Le,
                OpKind::Gt => Cmp::Gt,
                _ => Cmp::Ge,
            };
            Test::Compare(cmp, date_value(val, &display, ctx)?)
        }
        (OpKind::Lt | OpKind::Le | OpKind::Gt | OpKind::Ge, Operand::Value(val)) => {
            let cmp = match op {
                OpKind::Lt => Cmp::Lt,
                OpKind::Le => Cmp::Le,
                OpKind::Gt => Cmp::Gt,
                _ => Cmp::Ge,
            };
            Test::Compare(cmp, ordinal_value(field, val, &display, ctx)?)
        }
        (OpKind::Eq | OpKind::In, operand) | (OpKind::Ne | OpKind::NotIn, operand) => {
            let values = match operand {
                Operand::Value(v) => vec![v.clone()],
                Operand::List(vs) => vs.clone(),
                Operand::Empty => Vec::new(),
            };
            let mut canonical = Vec::new();
            for v in &values {
                canonical.extend(canonical_values(field, v, &display, ctx)?);
            }
            if matches!(op, OpKind::Eq | OpKind::In) {
                Test::AnyOf(canonical)
            } else {
                Test::NoneOf(canonical)
            }
        }
        _ => return Err(unsupported()),
    };
    Ok(Pred::Test(field, test))
}

fn value_missing(value: &str, field: &str) -> JqlError {
    JqlError(format!(
        "The value '{value}' does not exist for the field '{field}'."
    ))
}

fn is_key_format(value: &str) -> Option<u64> {
    let (project, number) = value.rsplit_once('-')?;
    let mut chars = project.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return None;
    }
    number.parse().ok()
}

/// The values a document is compared against for `=`, `!=`, `IN` and `NOT IN`.
fn canonical_values(
    field: Field,
    val: &Val,
    display: &str,
    ctx: &JqlContext,
) -> Result<Vec<String>, JqlError> {
    let state = ctx.state;
    let config = &state.config;
    let text = match val {
        Val::Text(t) => t.clone(),
        Val::Func(name, _) if name.eq_ignore_ascii_case("currentUser") => {
            return match field {
                Field::Reporter | Field::Creator => Ok(vec![ctx.caller.to_string()]),
                _ => Err(JqlError(format!(
                    "The function 'currentUser' is not supported by the '{display}' field."
                ))),
            };
        }
        Val::Func(..) => {
            return Err(JqlError(format!(
                "Unable to find JQL function '{}'.",
                val.display()
            )));
        }
    };
    let found = |value: Option<String>| {
        value
            .map(|v| vec![v])
            .ok_or_else(|| value_missing(&text, display))
    };
    match field {
        Field::Project => found(
            (text.eq_ignore_ascii_case(&config.project_key)
                || text == PROJECT_ID
                || text.eq_ignore_ascii_case(PROJECT_NAME))
            .then(|| config.project_key.to_ascii_uppercase()),
        ),
        Field::Key => {
            if let Ok(id) = text.parse::<u64>() {
                return match state.issues.get(&id) {
                    Some(issue) => Ok(vec![issue.key.clone()]),
                    None => Err(JqlError(format!(
                        "An issue with key '{text}' does not exist for field '{display}'."
                    ))),
                };
            }
            if is_key_format(&text).is_none() {
                return Err(JqlError(format!(
                    "The issue key '{text}' for field '{display}' is invalid."
                )));
            }
            match state.find_issue(&text).and_then(|id| state.issues.get(&id)) {
                Some(issue) => Ok(vec![issue.key.clone()]),
                None => Err(JqlError(format!(
                    "An issue with key '{text}' does not exist for field '{display}'."
                ))),
            }
        }
        Field::Status => found(state.status_by_name_or_id(&text).map(|s| s.id.clone())),
        Field::StatusCategory => found(
            StatusCategory::ALL
                .iter()
                .find(|c| {
                    c.key().eq_ignore_ascii_case(&text)
                        || c.name().eq_ignore_ascii_case(&text)
                        || c.id().to_string() == text
                })
                .map(|c| c.key().to_string()),
        ),
        Field::Priority => found(priority_by_name_or_id(&text).map(|(id, _)| id.to_string())),
        Field::IssueType => found(issue_type_by_name_or_id(&text).map(|(id, _)| id.to_string())),
        Field::Resolution => {
            if text.eq_ignore_ascii_case("unresolved") {
                Ok(vec![EMPTY_SENTINEL.to_string()])
            } else {
                found(resolution_by_name_or_id(&text).map(|(id, _)| id.to_string()))
            }
        }
        Field::Labels => Ok(vec![text]),
        Field::Component => found(
            config
                .components
                .iter()
                .enumerate()
                .find(|(i, c)| {
                    c.eq_ignore_ascii_case(&text) || crate::model::component_id(*i) == text
                })
                .map(|(_, c)| c.clone()),
        ),
        Field::Reporter | Field::Creator => found(
            config
                .users
                .iter()
                .chain(state.adhoc_users.values())
                .find(|u| {
                    u.account_id == text
                        || (!u.email.is_empty() && u.email.eq_ignore_ascii_case(&text))
                })
                .map(|u| u.account_id.clone()),
        ),
        Field::SyncFlag => {
            if text.eq_ignore_ascii_case(SYNC_OPTION_VALUE) || text == SYNC_OPTION_ID {
                Ok(vec![SYNC_OPTION_ID.to_string()])
            } else {
                Err(JqlError(format!(
                    "The option '{text}' for field '{display}' does not exist."
                )))
            }
        }
        _ => Err(JqlError(format!(
            "The operator '=' is not supported by the '{display}' field."
        ))),
    }
}

fn ordinal_value(
    field: Field,
    val: &Val,
    display: &str,
    ctx: &JqlContext,
) -> Result<i64, JqlError> {
    let text = match val {
        Val::Text(t) => t.clone(),
        Val::Func(..) => {
            return Err(JqlError(format!(
                "Unable to find JQL function '{}'.",
                val.display()
            )));
        }
    };
    match field {
        Field::Priority => priority_by_name_or_id(&text)
            .map(|(id, _)| priority_ordinal(id))
            .ok_or_else(|| value_missing(&text, display)),
        Field::Key => {
            if let Ok(id) = text.parse::<u64>() {
                return ctx
                    .state
                    .issues
                    .get(&id)
                    .map(|i| i.number as i64)
                    .ok_or_else(|| {
                        JqlError(format!(
                            "An issue with key '{text}' does not exist for field '{display}'."
                        ))
                    });
            }
            is_key_format(&text).map(|n| n as i64).ok_or_else(|| {
                JqlError(format!(
                    "The issue key '{text}' for field '{display}' is invalid."
                ))
            })
        }
        _ => Err(JqlError(format!(
            "The operator '<' is not supported by the '{display}' field."
        ))),
    }
}

/// Higher priority sorts and compares greater, as in Jira (`priority > Medium` is High
/// and Highest).
fn priority_ordinal(id: &str) -> i64 {
    6 - id.parse::<i64>().unwrap_or(3)
}

fn invalid_date(value: &str, field: &str) -> JqlError {
    JqlError(format!(
        "Date value '{value}' for field '{field}' is invalid. Valid formats include: 'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a period format e.g. '-5d', '4w 2d'."
    ))
}

/// Reads a wall-clock time in the site's zone. In a DST gap the clock jumps forward, as
/// Java's zone rules do; in an overlap the earlier instant wins.
pub(crate) fn local_to_utc(tz: Tz, naive: NaiveDateTime) -> DateTime<Utc> {
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(a, _) => a.with_timezone(&Utc),
        LocalResult::None => tz
            .from_local_datetime(&(naive + Duration::hours(1)))
            .earliest()
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|| Utc.from_utc_datetime(&naive)),
    }
}

/// `-15m`, `4w 2d`, `+1h`: a period relative to now.
fn parse_period(text: &str) -> Option<Duration> {
    let mut total = Duration::zero();
    let mut any = false;
    for part in text.split_whitespace() {
        let (sign, rest) = match part.strip_prefix('-') {
            Some(r) => (-1, r),
            None => (1, part.strip_prefix('+').unwrap_or(part)),
        };
        let unit = rest.chars().last()?;
        let amount: i64 = rest[..rest.len() - unit.len_utf8()].parse().ok()?;
        let d = match unit.to_ascii_lowercase() {
            'w' => Duration::weeks(amount),
            'd' => Duration::days(amount),
            'h' => Duration::hours(amount),
            'm' => Duration::minutes(amount),
            _ => return None,
        };
        total += d * sign;
        any = true;
    }
    any.then_some(total)
}

fn date_value(val: &Val, display: &str, ctx: &JqlContext) -> Result<i64, JqlError> {
    let tz = ctx.tz();
    match val {
        Val::Func(name, args) => {
            let lower = name.to_ascii_lowercase();
            let offset = match args.first() {
                Some(a) => parse_period(a).ok_or_else(|| invalid_date(a, display))?,
                None => Duration::zero(),
            };
            match lower.as_str() {
                "now" => Ok((ctx.now + offset).timestamp_millis()),
                "startofday" => {
                    let local = ctx.now.with_timezone(&tz).date_naive();
                    let start = local_to_utc(tz, local.and_time(NaiveTime::MIN));
                    Ok((start + offset).timestamp_millis())
                }
                _ => Err(JqlError(format!(
                    "Unable to find JQL function '{}'.",
                    val.display()
                ))),
            }
        }
        Val::Text(text) => {
            let text = text.trim();
            for format in ["%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M"] {
                if let Ok(naive) = NaiveDateTime::parse_from_str(text, format) {
                    return Ok(local_to_utc(tz, naive).timestamp_millis());
                }
            }
            for format in ["%Y-%m-%d", "%Y/%m/%d"] {
                if let Ok(date) = NaiveDate::parse_from_str(text, format) {
                    return Ok(local_to_utc(tz, date.and_time(NaiveTime::MIN)).timestamp_millis());
                }
            }
            if let Some(period) = parse_period(text) {
                return Ok((ctx.now + period).timestamp_millis());
            }
            Err(invalid_date(text, display))
        }
    }
}

// ---------------------------------------------------------------------------------------
// Evaluation

fn discrete(field: Field, doc: &SearchDoc, project_key: &str) -> Vec<String> {
    match field {
        Field::Project => vec![project_key.to_ascii_uppercase()],
        Field::Key => vec![doc.key.clone()],
        Field::Status => vec![doc.status_id.clone()],
        Field::StatusCategory => vec![doc.category.key().to_string()],
        Field::Priority => vec![doc.priority_id.clone()],
        Field::IssueType => vec![doc.issue_type_id.clone()],
        Field::Resolution => doc.resolution_id.iter().cloned().collect(),
        Field::Labels => doc.labels.clone(),
        Field::Component => doc.components.clone(),
        Field::Reporter => vec![doc.reporter.clone()],
        Field::Creator => vec![doc.creator.clone()],
        Field::SyncFlag => {
            if doc.sync_flag {
                vec![SYNC_OPTION_ID.to_string()]
            } else {
                Vec::new()
            }
        }
        Field::GoogleCase => doc.google_case.iter().cloned().collect(),
        Field::Summary => vec![doc.summary.clone()],
        Field::Description | Field::Text | Field::Comment | Field::Created | Field::Updated => {
            Vec::new()
        }
    }
}

fn text_of(field: Field, doc: &SearchDoc) -> String {
    match field {
        Field::Summary => doc.summary.clone(),
        Field::Description => doc.description.clone(),
        Field::Comment => doc.comments_text.clone(),
        Field::GoogleCase => doc.google_case.clone().unwrap_or_default(),
        _ => [
            doc.summary.as_str(),
            doc.description.as_str(),
            doc.comments_text.as_str(),
            doc.google_case.as_deref().unwrap_or(""),
        ]
        .join("\n"),
    }
}

fn ordinal_of(field: Field, doc: &SearchDoc) -> Option<i64> {
    match field {
        Field::Created => Some(doc.created.timestamp_millis()),
        Field::Updated => Some(doc.updated.timestamp_millis()),
        Field::Priority => Some(priority_ordinal(&doc.priority_id)),
        Field::Key => Some(doc.number as i64),
        _ => None,
    }
}

fn eq_values(field: Field, a: &str, b: &str) -> bool {
    match field {
        // Keys, components and names compare case-insensitively in Jira; labels are exact.
        Field::Labels => a == b,
        _ => a.eq_ignore_ascii_case(b),
    }
}

impl Pred {
    fn matches(&self, doc: &SearchDoc, project_key: &str) -> bool {
        match self {
            Pred::And(items) => items.iter().all(|p| p.matches(doc, project_key)),
            Pred::Or(items) => items.iter().any(|p| p.matches(doc, project_key)),
            Pred::Not(inner) => !inner.matches(doc, project_key),
            Pred::Test(field, test) => {
                let field = *field;
                match test {
                    Test::Empty | Test::NotEmpty => {
                        let empty = match field.kind() {
                            Kind::Text => text_of(field, doc).trim().is_empty(),
                            Kind::Date => false,
                            _ => discrete(field, doc, project_key).is_empty(),
                        };
                        empty == matches!(test, Test::Empty)
                    }
                    Test::AnyOf(values) => {
                        let have = discrete(field, doc, project_key);
                        if have.is_empty() {
                            values.iter().any(|v| v == EMPTY_SENTINEL)
                        } else {
                            have.iter()
                                .any(|h| values.iter().any(|v| eq_values(field, h, v)))
                        }
                    }
                    Test::NoneOf(values) => {
                        // JQL's `!=` and NOT IN never match an empty field.
                        let have = discrete(field, doc, project_key);
                        !have.is_empty()
                            && !have
                                .iter()
                                .any(|h| values.iter().any(|v| eq_values(field, h, v)))
                    }
                    Test::Compare(cmp, value) => match ordinal_of(field, doc) {
                        None => false,
                        Some(have) => match cmp {
                            Cmp::Eq => have == *value,
                            Cmp::Ne => have != *value,
                            Cmp::Lt => have < *value,
                            Cmp::Le => have <= *value,
                            Cmp::Gt => have > *value,
                            Cmp::Ge => have >= *value,
                        },
                    },
                    Test::Contains(term) => text_of(field, doc).to_lowercase().contains(term),
                    Test::NotContains(term) => {
                        let text = text_of(field, doc);
                        !text.trim().is_empty() && !text.to_lowercase().contains(term)
                    }
                }
            }
        }
    }
}

impl Query {
    pub fn matches(&self, doc: &SearchDoc, project_key: &str) -> bool {
        self.filter
            .as_ref()
            .is_some_and(|f| f.matches(doc, project_key))
    }

    pub fn sort_key(&self, doc: &SearchDoc) -> Vec<SortVal> {
        self.order
            .iter()
            .map(|(field, _)| match field {
                SortField::Updated => SortVal::Int(doc.updated.timestamp_millis()),
                SortField::Created => SortVal::Int(doc.created.timestamp_millis()),
                SortField::Key => SortVal::Int(doc.number as i64),
                SortField::Priority => SortVal::Int(priority_ordinal(&doc.priority_id)),
                SortField::Summary => SortVal::Str(doc.summary.to_lowercase()),
            })
            .collect()
    }

    /// Orders two (sort key, issue id) pairs; the id breaks ties so paging is total.
    pub fn compare(&self, a: (&[SortVal], u64), b: (&[SortVal], u64)) -> Ordering {
        for (i, (_, ascending)) in self.order.iter().enumerate() {
            let ord = match (a.0.get(i), b.0.get(i)) {
                (Some(x), Some(y)) => x.cmp(y),
                _ => Ordering::Equal,
            };
            let ord = if *ascending { ord } else { ord.reverse() };
            if ord != Ordering::Equal {
                return ord;
            }
        }
        a.1.cmp(&b.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::JiraEmulatorConfig;
    use crate::fields::Draft;

    fn state() -> State {
        State::new(JiraEmulatorConfig::default())
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn doc(state: &mut State, updated: &str) -> SearchDoc {
        let id = state.create_issue(
            Draft {
                project_set: true,
                summary: Some("Disk is slow".into()),
                sync_flag: true,
                labels: vec!["gcp-case-123".into()],
                ..Draft::default()
            },
            "agent-1",
            at(updated),
        );
        let issue = state.issues.get(&id).unwrap();
        issue.search_doc(state.category_of(&issue.status_id))
    }

    fn check(state: &State, jql: &str, doc: &SearchDoc) -> Result<bool, JqlError> {
        let ctx = JqlContext {
            state,
            now: at("2026-11-29T12:00:00Z"),
            caller: "casesync-bot",
        };
        Ok(parse(jql, &ctx)?.matches(doc, "SUP"))
    }

    #[test]
    fn minute_precision_in_the_site_time_zone() {
        let mut s = state();
        // 10:30:40 UTC is 11:30:40 in Berlin (UTC+1 in November).
        let d = doc(&mut s, "2026-11-29T10:30:40.123Z");
        assert!(check(&s, r#"updated >= "2026-11-29 11:30""#, &d).unwrap());
        assert!(check(&s, r#"updated > "2026-11-29 11:30""#, &d).unwrap());
        assert!(!check(&s, r#"updated >= "2026-11-29 11:31""#, &d).unwrap());
        assert!(!check(&s, r#"updated <= "2026-11-29 11:30""#, &d).unwrap());
        assert!(check(&s, r#"updated <= "2026-11-29 11:31""#, &d).unwrap());
        // The literal is Berlin time: "10:31" is 09:31 UTC, well before the update.
        assert!(check(&s, r#"updated >= "2026-11-29 10:31""#, &d).unwrap());
        assert!(!check(&s, r#"updated >= "2026/11/29 11:31""#, &d).unwrap());
        assert!(check(&s, r#"updated >= "2026-11-29""#, &d).unwrap());
        assert!(check(&s, "updated >= 2026-11-29", &d).unwrap());
    }

    #[test]
    fn summer_time_offset_is_two_hours() {
        let mut s = state();
        let d = doc(&mut s, "2026-07-01T10:00:00Z");
        assert!(check(&s, r#"updated >= "2026-07-01 12:00""#, &d).unwrap());
        assert!(!check(&s, r#"updated >= "2026-07-01 12:01""#, &d).unwrap());
    }

    #[test]
    fn other_site_time_zones_are_honoured() {
        let mut s = State::new(JiraEmulatorConfig {
            time_zone: "America/New_York".into(),
            ..JiraEmulatorConfig::default()
        });
        let d = doc(&mut s, "2026-11-29T10:30:40Z");
        assert!(check(&s, r#"updated >= "2026-11-29 05:30""#, &d).unwrap());
        assert!(!check(&s, r#"updated >= "2026-11-29 05:31""#, &d).unwrap());
    }

    #[test]
    fn relative_dates_and_functions() {
        let mut s = state();
        let d = doc(&mut s, "2026-11-29T11:50:00Z");
        assert!(check(&s, "updated >= -15m", &d).unwrap());
        assert!(!check(&s, "updated >= -5m", &d).unwrap());
        assert!(check(&s, "updated >= startOfDay()", &d).unwrap());
        assert!(check(&s, "updated <= now()", &d).unwrap());
        assert!(check(&s, r#"updated >= "-1d 2h""#, &d).unwrap());
    }

    #[test]
    fn sync_flag_in_every_spelling() {
        let mut s = state();
        let d = doc(&mut s, "2026-11-29T10:00:00Z");
        for jql in [
            r#"cf[10050] = "Yes""#,
            "cf[10050] = Yes",
            "customfield_10050 = Yes",
            r#""Synchronize with Google Cloud Support" = Yes"#,
            r#""Synchronize with Google Cloud Support[Checkboxes]" = Yes"#,
            "cf[10050] in (Yes)",
            "cf[10050] = 10100",
            "cf[10050] is not EMPTY",
        ] {
            assert!(check(&s, jql, &d).unwrap(), "{jql}");
        }
        assert!(!check(&s, "cf[10050] is EMPTY", &d).unwrap());
        let err = check(&s, "cf[10050] = Maybe", &d).unwrap_err();
        assert!(err.0.contains("The option 'Maybe'"), "{}", err.0);
        let err = check(&s, "cf[99999] = Yes", &d).unwrap_err();
        assert!(
            err.0.contains("Field 'cf[99999]' does not exist"),
            "{}",
            err.0
        );
    }

    #[test]
    fn the_connector_poll_query() {
        let mut s = state();
        let d = doc(&mut s, "2026-11-29T10:30:40Z");
        let jql = r#"project = SUP AND cf[10050] = "Yes" AND updated >= "2026-11-29 11:00" ORDER BY updated ASC, key ASC"#;
        assert!(check(&s, jql, &d).unwrap());
        assert!(
            check(
                &s,
                r#"labels = "gcp-case-123" AND statusCategory != Done"#,
                &d
            )
            .unwrap()
        );
        assert!(!check(&s, r#"labels = "gcp-case-124""#, &d).unwrap());
        assert!(check(&s, "key = SUP-1", &d).unwrap());
        assert!(check(&s, "key = sup-1 OR key = SUP-1", &d).unwrap());
        assert!(check(&s, "id = 10001", &d).unwrap());
        assert!(check(&s, "issuekey in (SUP-1, 10001)", &d).unwrap());
        assert!(check(&s, "statusCategory = new and status = \"To Do\"", &d).unwrap());
        assert!(check(&s, "NOT statusCategory = Done", &d).unwrap());
        assert!(check(&s, "(project = SUP) AND resolution = Unresolved", &d).unwrap());
        assert!(check(&s, "priority = Medium AND priority > Low", &d).unwrap());
        assert!(check(&s, "summary ~ disk", &d).unwrap());
        assert!(check(&s, "reporter = currentUser() OR creator = agent-1", &d).unwrap());
    }

    #[test]
    fn not_equal_never_matches_empty() {
        let mut s = state();
        let d = doc(&mut s, "2026-11-29T10:00:00Z");
        assert!(!check(&s, "resolution != Done", &d).unwrap());
        assert!(check(&s, "labels != other", &d).unwrap());
    }

    #[test]
    fn errors_read_like_jira() {
        let mut s = state();
        let d = doc(&mut s, "2026-11-29T10:00:00Z");
        let msg = |jql: &str| check(&s, jql, &d).unwrap_err().0;
        assert!(msg("project = SUP AND").contains("Expecting a field name"));
        assert!(msg("project SUP").contains("Expecting operator but got 'SUP'"));
        assert!(
            msg("project = SUP extra").contains("Expecting either 'OR' or 'AND' but got 'extra'")
        );
        assert!(
            msg(r#"updated >= "2026-13-45 10:00""#)
                .contains("Date value '2026-13-45 10:00' for field 'updated' is invalid")
        );
        assert!(
            msg("updated >= 2026-11-29 11:30")
                .contains("Expecting either 'OR' or 'AND' but got '11:30'")
        );
        assert!(
            msg(r#"summary = "x""#)
                .contains("The operator '=' is not supported by the 'summary' field.")
        );
        assert!(
            msg(r#""Google Case Name" = "projects/1/cases/2""#)
                .contains("The operator '=' is not supported")
        );
        assert!(
            msg("project = NOPE")
                .contains("The value 'NOPE' does not exist for the field 'project'.")
        );
        assert!(
            msg("statusCategory = Finished")
                .contains("does not exist for the field 'statusCategory'")
        );
        assert!(msg("bogus = 1").contains("Field 'bogus' does not exist"));
        assert!(msg(r#"summary ~ "unterminated"#).contains("has not been completed"));
        assert!(msg("key = SUP-99").contains("An issue with key 'SUP-99' does not exist"));
        assert!(
            msg("project = SUP ORDER BY labels").contains("Not able to sort using field 'labels'")
        );
        assert!(msg("project in SUP").contains("Expecting '('"));
    }

    #[test]
    fn unbounded_queries_have_no_filter() {
        let s = state();
        let ctx = JqlContext {
            state: &s,
            now: Utc::now(),
            caller: "casesync-bot",
        };
        assert!(parse("ORDER BY key DESC", &ctx).unwrap().filter.is_none());
        assert!(parse("", &ctx).unwrap().filter.is_none());
    }

    #[test]
    fn sorting_follows_order_by_then_id() {
        let mut s = state();
        let a = doc(&mut s, "2026-11-29T10:00:00Z");
        let b = doc(&mut s, "2026-11-29T09:00:00Z");
        let ctx = JqlContext {
            state: &s,
            now: Utc::now(),
            caller: "casesync-bot",
        };
        let q = parse("project = SUP ORDER BY updated ASC", &ctx).unwrap();
        let (ka, kb) = (q.sort_key(&a), q.sort_key(&b));
        assert_eq!(
            q.compare((&ka, a.number), (&kb, b.number)),
            Ordering::Greater
        );
        let q = parse("project = SUP", &ctx).unwrap();
        let (ka, kb) = (q.sort_key(&a), q.sort_key(&b));
        // Default order is key DESC.
        assert_eq!(
            q.compare((&ka, a.number), (&kb, b.number)),
            Ordering::Greater
        );
    }
}
