//! Request-body decoding with the strictness of Google's JSON transcoder.
//!
//! Google rejects unknown fields and values of the wrong type with 400, accepts both
//! lowerCamelCase and proto (snake_case) field names, treats `null` as "unset", and
//! accepts enums as names or integers. A lenient emulator would let a client bug
//! (a misspelt field, a wrong enum) pass locally and fail in production, so the
//! schemas below mirror the discovery document and are checked field by field.

use chrono::DateTime;
use serde_json::{Map, Value};

use crate::errors::ApiError;
use crate::model::{PRIORITY_NAMES, STATE_NAMES};

#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Str,
    Bool,
    /// Proto enum type name (for messages) and its value names in number order.
    Enum(&'static str, &'static [&'static str]),
    StrList,
    Msg(&'static [Field]),
    Timestamp,
    Int64,
}

#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub json: &'static str,
    pub proto: &'static str,
    pub kind: Kind,
}

const fn f(json: &'static str, proto: &'static str, kind: Kind) -> Field {
    Field { json, proto, kind }
}

pub const ACTOR: &[Field] = &[
    f("displayName", "display_name", Kind::Str),
    f("email", "email", Kind::Str),
    f("googleSupport", "google_support", Kind::Bool),
    f("username", "username", Kind::Str),
];

pub const CLASSIFICATION: &[Field] = &[
    f("id", "id", Kind::Str),
    f("displayName", "display_name", Kind::Str),
];

pub const CASE: &[Field] = &[
    f("name", "name", Kind::Str),
    f("displayName", "display_name", Kind::Str),
    f("description", "description", Kind::Str),
    f(
        "classification",
        "classification",
        Kind::Msg(CLASSIFICATION),
    ),
    f("timeZone", "time_zone", Kind::Str),
    f(
        "subscriberEmailAddresses",
        "subscriber_email_addresses",
        Kind::StrList,
    ),
    f(
        "state",
        "state",
        Kind::Enum("google.cloud.support.v2.Case.State", STATE_NAMES),
    ),
    f("createTime", "create_time", Kind::Timestamp),
    f("updateTime", "update_time", Kind::Timestamp),
    f("creator", "creator", Kind::Msg(ACTOR)),
    f("contactEmail", "contact_email", Kind::Str),
    f("escalated", "escalated", Kind::Bool),
    f("testCase", "test_case", Kind::Bool),
    f("languageCode", "language_code", Kind::Str),
    f(
        "priority",
        "priority",
        Kind::Enum("google.cloud.support.v2.Case.Priority", PRIORITY_NAMES),
    ),
];

pub const COMMENT: &[Field] = &[
    f("name", "name", Kind::Str),
    f("createTime", "create_time", Kind::Timestamp),
    f("creator", "creator", Kind::Msg(ACTOR)),
    f("body", "body", Kind::Str),
    f("plainTextBody", "plain_text_body", Kind::Str),
];

pub const ATTACHMENT: &[Field] = &[
    f("name", "name", Kind::Str),
    f("createTime", "create_time", Kind::Timestamp),
    f("creator", "creator", Kind::Msg(ACTOR)),
    f("filename", "filename", Kind::Str),
    f("mimeType", "mime_type", Kind::Str),
    f("sizeBytes", "size_bytes", Kind::Int64),
];

pub const CREATE_ATTACHMENT_REQUEST: &[Field] = &[
    f("parent", "parent", Kind::Str),
    f("attachment", "attachment", Kind::Msg(ATTACHMENT)),
];

/// CloseCaseRequest. The official Rust crate sends the whole request (`{"name":…}`)
/// as the body of `:close`, so `name` is accepted besides the path.
pub const CLOSE_CASE_REQUEST: &[Field] = &[f("name", "name", Kind::Str)];

pub const ESCALATION: &[Field] = &[
    f(
        "reason",
        "reason",
        Kind::Enum(
            "google.cloud.support.v2.Escalation.Reason",
            &[
                "REASON_UNSPECIFIED",
                "RESOLUTION_TIME",
                "TECHNICAL_EXPERTISE",
                "BUSINESS_IMPACT",
            ],
        ),
    ),
    f("justification", "justification", Kind::Str),
];

pub const ESCALATE_CASE_REQUEST: &[Field] = &[
    f("name", "name", Kind::Str),
    f("escalation", "escalation", Kind::Msg(ESCALATION)),
];

/// Parses a JSON body; an empty body is `{}` (what Google assumes for bodiless POSTs).
pub fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Map::new()));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_field("", format!("Invalid JSON payload received. {e}")))
}

fn at(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!(" at '{path}'")
    }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// Checks `v` against `fields` and returns it keyed by JSON name, enums as numbers,
/// nulls dropped. `path` names the message in error messages (e.g. `case`).
pub fn decode(v: &Value, fields: &[Field], path: &str) -> Result<Map<String, Value>, ApiError> {
    let obj = v.as_object().ok_or_else(|| {
        ApiError::bad_field(
            path,
            format!(
                "Invalid JSON payload received. Expected an object{}.",
                at(path)
            ),
        )
    })?;
    let mut out = Map::new();
    for (key, value) in obj {
        let Some(field) = fields.iter().find(|f| f.json == key || f.proto == key) else {
            return Err(ApiError::bad_field(
                path,
                format!(
                    "Invalid JSON payload received. Unknown name \"{key}\"{}: Cannot find field.",
                    at(path)
                ),
            ));
        };
        if value.is_null() {
            continue;
        }
        let fpath = join(path, field.proto);
        let decoded = decode_value(value, field.kind, &fpath)?;
        out.insert(field.json.to_string(), decoded);
    }
    Ok(out)
}

fn invalid_value(path: &str, ty: &str, value: &Value) -> ApiError {
    ApiError::bad_field(path, format!("Invalid value at '{path}' ({ty}), {value}"))
}

fn decode_value(value: &Value, kind: Kind, path: &str) -> Result<Value, ApiError> {
    match kind {
        Kind::Str => match value {
            Value::String(_) => Ok(value.clone()),
            _ => Err(invalid_value(path, "TYPE_STRING", value)),
        },
        Kind::Bool => match value {
            Value::Bool(_) => Ok(value.clone()),
            _ => Err(invalid_value(path, "TYPE_BOOL", value)),
        },
        Kind::Enum(ty, names) => {
            let idx = match value {
                Value::String(s) => names.iter().position(|n| n == s),
                Value::Number(n) => n
                    .as_u64()
                    .and_then(|n| usize::try_from(n).ok())
                    .filter(|&n| n < names.len()),
                _ => None,
            };
            idx.map(Value::from)
                .ok_or_else(|| invalid_value(path, &format!("type.googleapis.com/{ty}"), value))
        }
        Kind::StrList => match value {
            Value::Array(items) if items.iter().all(Value::is_string) => Ok(value.clone()),
            _ => Err(invalid_value(path, "TYPE_STRING", value)),
        },
        Kind::Msg(fields) => decode(value, fields, path).map(Value::Object),
        Kind::Timestamp => match value {
            Value::String(s) if DateTime::parse_from_rfc3339(s).is_ok() => Ok(value.clone()),
            _ => Err(invalid_value(
                path,
                "type.googleapis.com/google.protobuf.Timestamp",
                value,
            )),
        },
        Kind::Int64 => match value {
            Value::String(s) if s.parse::<i64>().is_ok() => Ok(value.clone()),
            Value::Number(n) if n.is_i64() || n.is_u64() => Ok(value.clone()),
            _ => Err(invalid_value(path, "TYPE_INT64", value)),
        },
    }
}

/// A string field of a decoded message ("" when unset).
pub fn str_field<'a>(m: &'a Map<String, Value>, key: &str) -> &'a str {
    m.get(key).and_then(Value::as_str).unwrap_or("")
}

/// An enum field of a decoded message (0 when unset).
pub fn enum_field(m: &Map<String, Value>, key: &str) -> usize {
    m.get(key)
        .and_then(Value::as_u64)
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn accepts_both_name_styles_and_int_enums() {
        let m = decode(
            &json!({"display_name": "x", "priority": 3, "classification": {"id": "c"}}),
            CASE,
            "case",
        )
        .unwrap();
        assert_eq!(str_field(&m, "displayName"), "x");
        assert_eq!(enum_field(&m, "priority"), 3);
        let m = decode(&json!({"priority": "P2", "testCase": true}), CASE, "case").unwrap();
        assert_eq!(enum_field(&m, "priority"), 3);
    }

    #[test]
    fn rejects_unknown_fields_and_bad_values() {
        let e = decode(&json!({"severity": "S1"}), CASE, "case").unwrap_err();
        assert!(e.message.contains("Unknown name \"severity\" at 'case'"));
        assert!(decode(&json!({"priority": "P9"}), CASE, "case").is_err());
        assert!(decode(&json!({"priority": 6}), CASE, "case").is_err());
        assert!(decode(&json!({"classification": {"idd": "x"}}), CASE, "case").is_err());
        assert!(decode(&json!({"subscriberEmailAddresses": "a@b"}), CASE, "case").is_err());
        assert!(decode(&json!([1]), CASE, "case").is_err());
    }

    #[test]
    fn nulls_are_unset_and_empty_body_is_an_empty_object() {
        let m = decode(&json!({"description": null}), CASE, "case").unwrap();
        assert!(m.is_empty());
        assert_eq!(parse_json(b"").unwrap(), json!({}));
        assert!(parse_json(b"{not json").is_err());
    }
}
