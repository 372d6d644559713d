//! Reading the `fields` / `update` maps of create-issue and edit-issue requests. Jira
//! validates every field against the screen and the field's type and reports all
//! problems at once as `errors: {field: message}`; a client that sends a wrong shape (a
//! plain-string description in v3, an object where a Checkboxes field wants an array, a
//! field that is not on the screen) must get the same 400 here as from a real site.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::adf::validate_adf;
use crate::errors::ApiError;
use crate::model::{
    self, DEFAULT_PRIORITY_ID, PROJECT_ID, SYNC_OPTION_ID, SYNC_OPTION_VALUE,
    issue_type_by_name_or_id, priority_by_name_or_id,
};
use crate::state::State;

/// The editable part of an issue, before it is written back.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Draft {
    pub project_set: bool,
    pub summary: Option<String>,
    pub description: Option<Value>,
    pub issue_type_id: Option<String>,
    pub priority_id: String,
    pub labels: Vec<String>,
    pub components: Vec<String>,
    pub sync_flag: bool,
    pub google_case: Option<String>,
    pub reporter: Option<String>,
}

impl Default for Draft {
    fn default() -> Self {
        Draft {
            project_set: false,
            summary: None,
            description: None,
            issue_type_id: None,
            priority_id: DEFAULT_PRIORITY_ID.to_string(),
            labels: Vec::new(),
            components: Vec::new(),
            sync_flag: false,
            google_case: None,
            reporter: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Create,
    Edit,
}

fn not_settable(name: &str) -> String {
    format!("Field '{name}' cannot be set. It is not on the appropriate screen, or unknown.")
}

/// Applies a request's `fields` and `update` to `draft`, or answers the 400 Jira would.
pub(crate) fn apply_request(
    state: &State,
    draft: &mut Draft,
    body: &Map<String, Value>,
    mode: Mode,
) -> Result<(), ApiError> {
    let empty = Map::new();
    let fields = match body.get("fields") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(map)) => map,
        Some(_) => return Err(ApiError::invalid_payload()),
    };
    let update = match body.get("update") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(map)) => map,
        Some(_) => return Err(ApiError::invalid_payload()),
    };
    let mut errors = BTreeMap::new();
    for (name, value) in fields {
        if update.contains_key(name) {
            errors.insert(
                name.clone(),
                format!("Field '{name}' cannot be set in both 'fields' and 'update'."),
            );
            continue;
        }
        apply_op(state, draft, name, "set", value, mode, &mut errors);
    }
    for (name, ops) in update {
        let ops = ops.as_array().ok_or_else(ApiError::invalid_payload)?;
        for op in ops {
            let op = op.as_object().ok_or_else(ApiError::invalid_payload)?;
            if op.len() != 1 {
                return Err(ApiError::invalid_payload());
            }
            for (verb, value) in op {
                apply_op(state, draft, name, verb, value, mode, &mut errors);
            }
        }
    }
    if mode == Mode::Create {
        if !draft.project_set {
            errors
                .entry("project".to_string())
                .or_insert_with(|| "Specify a valid project ID or key".to_string());
        }
        if draft.issue_type_id.is_none() {
            errors
                .entry("issuetype".to_string())
                .or_insert_with(|| "Specify an issue type".to_string());
        }
        if draft.summary.is_none() {
            errors
                .entry("summary".to_string())
                .or_insert_with(|| "You must specify a summary of the issue.".to_string());
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::fields(errors))
    }
}

/// `{ "id": .. }` or `{ "name": .. }` (also `key` for projects), as a string; Jira takes
/// ids as strings or numbers.
fn reference(value: &Value, keys: &[&str]) -> Option<String> {
    let obj = value.as_object()?;
    keys.iter().find_map(|k| match obj.get(*k) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}

fn apply_op(
    state: &State,
    draft: &mut Draft,
    name: &str,
    verb: &str,
    value: &Value,
    mode: Mode,
    errors: &mut BTreeMap<String, String>,
) {
    let config = &state.config;
    let mut fail = |message: String| {
        errors.insert(name.to_string(), message);
    };
    let unsupported = || format!("Field '{name}' does not support the '{verb}' operation.");
    match name {
        "project" if mode == Mode::Create => {
            if verb != "set" {
                return fail(unsupported());
            }
            match reference(value, &["key", "id"]) {
                Some(r) if r.eq_ignore_ascii_case(&config.project_key) || r == PROJECT_ID => {
                    draft.project_set = true
                }
                _ => fail("Specify a valid project ID or key".to_string()),
            }
        }
        "issuetype" => {
            if verb != "set" {
                return fail(unsupported());
            }
            match reference(value, &["id", "name"])
                .as_deref()
                .and_then(issue_type_by_name_or_id)
            {
                Some((id, _)) => draft.issue_type_id = Some(id.to_string()),
                None => fail("The issue type selected is invalid.".to_string()),
            }
        }
        "summary" => {
            if verb != "set" {
                return fail(unsupported());
            }
            match value.as_str().map(str::trim) {
                None => fail("Operation value must be a string".to_string()),
                Some("") => fail("You must specify a summary of the issue.".to_string()),
                Some(s) if s.chars().count() > 255 => {
                    fail("Summary must be less than 255 characters.".to_string())
                }
                Some(s) => draft.summary = Some(s.to_string()),
            }
        }
        "description" => {
            if verb != "set" {
                return fail(unsupported());
            }
            if value.is_null() {
                draft.description = None;
            } else if validate_adf(value).is_ok() {
                draft.description = Some(value.clone());
            } else {
                fail(
                    "Operation value must be an Atlassian Document (see the Atlassian Document Format)"
                        .to_string(),
                );
            }
        }
        "priority" => {
            if verb != "set" {
                return fail(unsupported());
            }
            if value.is_null() {
                draft.priority_id = DEFAULT_PRIORITY_ID.to_string();
                return;
            }
            match reference(value, &["id", "name"]) {
                None => fail("Specify the Priority (id or name) in the string format".to_string()),
                Some(r) => match priority_by_name_or_id(&r) {
                    Some((id, _)) => draft.priority_id = id.to_string(),
                    None => fail("The priority selected is invalid.".to_string()),
                },
            }
        }
        "labels" => apply_labels(draft, verb, value, &mut fail, unsupported),
        "components" => {
            let resolve = |v: &Value| -> Result<String, String> {
                if let Some(name) = v.get("name").and_then(Value::as_str) {
                    return config
                        .components
                        .iter()
                        .find(|c| c.eq_ignore_ascii_case(name))
                        .cloned()
                        .ok_or_else(|| format!("Component name '{name}' is not valid"));
                }
                match reference(v, &["id"]) {
                    Some(id) => config
                        .components
                        .iter()
                        .enumerate()
                        .find(|(i, _)| model::component_id(*i) == id)
                        .map(|(_, c)| c.clone())
                        .ok_or_else(|| format!("Component with id '{id}' does not exist.")),
                    None => Err("Component name or id is required.".to_string()),
                }
            };
            match verb {
                "set" => {
                    let items = match value {
                        Value::Null => Vec::new(),
                        Value::Array(items) => items.clone(),
                        _ => return fail("data was not an array".to_string()),
                    };
                    let mut out = Vec::new();
                    for item in &items {
                        match resolve(item) {
                            Ok(c) if !out.contains(&c) => out.push(c),
                            Ok(_) => {}
                            Err(e) => return fail(e),
                        }
                    }
                    draft.components = out;
                }
                "add" => match resolve(value) {
                    Ok(c) if !draft.components.contains(&c) => draft.components.push(c),
                    Ok(_) => {}
                    Err(e) => fail(e),
                },
                "remove" => match resolve(value) {
                    Ok(c) => draft.components.retain(|x| *x != c),
                    Err(e) => fail(e),
                },
                _ => fail(unsupported()),
            }
        }
        "reporter" => {
            if verb != "set" {
                return fail(unsupported());
            }
            match reference(value, &["accountId", "id"]) {
                Some(account) if state.user(&account).is_some() => draft.reporter = Some(account),
                Some(_) => fail("The reporter specified is not a user.".to_string()),
                None => fail("Reporter is required.".to_string()),
            }
        }
        n if n == config.sync_flag_field => {
            let option = |v: &Value| -> Result<(), String> {
                if let Some(text) = v.get("value").and_then(Value::as_str) {
                    return if text == SYNC_OPTION_VALUE {
                        Ok(())
                    } else {
                        Err(format!("Option value '{text}' is not valid"))
                    };
                }
                match reference(v, &["id"]) {
                    Some(id) if id == SYNC_OPTION_ID => Ok(()),
                    Some(id) => Err(format!("Option id '{id}' is not valid")),
                    None => Err(format!("Specify a valid value for {n}")),
                }
            };
            match verb {
                "set" => match value {
                    Value::Null => draft.sync_flag = false,
                    Value::Array(items) => match items.iter().try_for_each(option) {
                        Ok(()) => draft.sync_flag = !items.is_empty(),
                        Err(e) => fail(e),
                    },
                    _ => fail("data was not an array".to_string()),
                },
                "add" => match option(value) {
                    Ok(()) => draft.sync_flag = true,
                    Err(e) => fail(e),
                },
                "remove" => match option(value) {
                    Ok(()) => draft.sync_flag = false,
                    Err(e) => fail(e),
                },
                _ => fail(unsupported()),
            }
        }
        n if n == config.google_case_field => {
            if verb != "set" {
                return fail(unsupported());
            }
            match value {
                Value::Null => draft.google_case = None,
                Value::String(s) if s.chars().count() > 255 => fail(
                    "The entered text is too long. It exceeds the allowed limit of 255 characters."
                        .to_string(),
                ),
                Value::String(s) if s.is_empty() => draft.google_case = None,
                Value::String(s) => draft.google_case = Some(s.clone()),
                _ => fail("Operation value must be a string".to_string()),
            }
        }
        _ => fail(not_settable(name)),
    }
}

fn check_label(label: &str) -> Result<(), String> {
    if label.is_empty() {
        Err("A label cannot be empty.".to_string())
    } else if label.chars().any(char::is_whitespace) {
        Err(format!(
            "The label '{label}' contains spaces which is invalid."
        ))
    } else if label.chars().count() > 255 {
        Err(format!(
            "The label '{label}' exceeds the maximum length of 255 characters."
        ))
    } else {
        Ok(())
    }
}

fn apply_labels(
    draft: &mut Draft,
    verb: &str,
    value: &Value,
    fail: &mut impl FnMut(String),
    unsupported: impl Fn() -> String,
) {
    match verb {
        "set" => {
            let items = match value {
                Value::Null => Vec::new(),
                Value::Array(items) => items.clone(),
                _ => return fail("data was not an array".to_string()),
            };
            let mut labels: Vec<String> = Vec::new();
            for item in &items {
                let Some(label) = item.as_str() else {
                    return fail("Operation value must be a string".to_string());
                };
                if let Err(e) = check_label(label) {
                    return fail(e);
                }
                if !labels.iter().any(|l| l == label) {
                    labels.push(label.to_string());
                }
            }
            draft.labels = labels;
        }
        "add" => match value.as_str() {
            None => fail("Operation value must be a string".to_string()),
            Some(label) => match check_label(label) {
                Err(e) => fail(e),
                Ok(()) => {
                    if !draft.labels.iter().any(|l| l == label) {
                        draft.labels.push(label.to_string());
                    }
                }
            },
        },
        "remove" => match value.as_str() {
            None => fail("Operation value must be a string".to_string()),
            Some(label) => draft.labels.retain(|l| l != label),
        },
        _ => fail(unsupported()),
    }
}
