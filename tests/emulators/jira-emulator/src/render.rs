//! JSON views of the model: the platform API's IssueBean, Comment, Attachment, User,
//! Status and Priority shapes as the OpenAPI document names their fields, JSM's DTOs, and
//! the control API's plain-text view. Kept apart from the handlers so every route renders
//! an issue the same way.

use std::collections::HashSet;

use serde_json::{Map, Value, json};

use crate::adf::adf_to_text;
use crate::config::{JiraTransition, StatusCategory};
use crate::model::{
    self, Attachment, Comment, ISSUE_TYPES, Issue, PRIORITIES, PROJECT_ID, PROJECT_NAME,
    RESOLUTIONS, SYNC_OPTION_ID, SYNC_OPTION_VALUE, jira_time,
};
use crate::state::State;

/// Which fields a caller asked for, from Jira's `fields` parameter grammar: a comma list
/// of ids, `*all`, `*navigable`, and `-id` to exclude.
#[derive(Debug, Clone, Default)]
pub(crate) struct FieldSelection {
    all: bool,
    include: HashSet<String>,
    exclude: HashSet<String>,
}

impl FieldSelection {
    /// `default` applies when the caller named no field to include (`*all` for GET
    /// issue, `id` for search).
    pub fn parse(tokens: &[String], default: &str) -> Self {
        let mut selection = FieldSelection::default();
        let mut positive = false;
        for token in tokens.iter().flat_map(|t| t.split(',')) {
            let token = token.trim();
            if token.is_empty() {
                continue;
            }
            if let Some(excluded) = token.strip_prefix('-') {
                selection.exclude.insert(excluded.to_string());
            } else if token == "*all" || token == "*navigable" {
                selection.all = true;
                positive = true;
            } else {
                selection.include.insert(token.to_string());
                positive = true;
            }
        }
        if !positive {
            if selection.exclude.is_empty() {
                if default == "*all" {
                    selection.all = true;
                } else {
                    selection.include.insert(default.to_string());
                }
            } else {
                // Only exclusions: Jira means "the navigable fields, except these".
                selection.all = true;
            }
        }
        selection
    }

    pub fn all() -> Self {
        FieldSelection {
            all: true,
            ..FieldSelection::default()
        }
    }

    pub fn includes(&self, field: &str) -> bool {
        !self.exclude.contains(field) && (self.all || self.include.contains(field))
    }

    /// Search's default: only issue ids.
    pub fn id_only(&self) -> bool {
        !self.all && self.include.iter().all(|f| f == "id")
    }
}

/// Splits Jira's comma-separated `expand` values.
pub(crate) fn expand_set(values: &[String]) -> HashSet<String> {
    values
        .iter()
        .flat_map(|v| v.split(','))
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect()
}

pub(crate) fn avatar_urls(base: &str, account_id: &str) -> Value {
    let url = |size: u32| format!("{base}/_media/avatar/{account_id}?size={size}");
    json!({"16x16": url(16), "24x24": url(24), "32x32": url(32), "48x48": url(48)})
}

pub(crate) fn user_json(state: &State, account_id: &str, base: &str) -> Value {
    let mut out = Map::new();
    out.insert(
        "self".into(),
        json!(format!("{base}/rest/api/3/user?accountId={account_id}")),
    );
    out.insert("accountId".into(), json!(account_id));
    let configured = state.is_configured_user(account_id);
    out.insert(
        "accountType".into(),
        json!(if configured { "atlassian" } else { "customer" }),
    );
    let user = state.user(account_id);
    if let Some(u) = user
        && !u.email.is_empty()
    {
        out.insert("emailAddress".into(), json!(u.email));
    }
    out.insert("avatarUrls".into(), avatar_urls(base, account_id));
    out.insert(
        "displayName".into(),
        json!(user.map(|u| u.display_name.as_str()).unwrap_or(account_id)),
    );
    out.insert("active".into(), json!(true));
    out.insert("timeZone".into(), json!(state.config.time_zone));
    Value::Object(out)
}

pub(crate) fn status_category_json(category: StatusCategory, base: &str) -> Value {
    json!({
        "self": format!("{base}/rest/api/3/statuscategory/{}", category.id()),
        "id": category.id(),
        "key": category.key(),
        "colorName": category.color(),
        "name": category.name(),
    })
}

pub(crate) fn status_json(state: &State, status_id: &str, base: &str) -> Value {
    let (name, category) = state
        .status(status_id)
        .map(|s| (s.name.clone(), s.category))
        .unwrap_or_else(|| (status_id.to_string(), StatusCategory::New));
    json!({
        "self": format!("{base}/rest/api/3/status/{status_id}"),
        "description": "",
        "iconUrl": format!("{base}/images/icons/statuses/generic.png"),
        "name": name,
        "id": status_id,
        "statusCategory": status_category_json(category, base),
    })
}

pub(crate) fn priority_json(priority_id: &str, base: &str) -> Value {
    let name = model::priority_name(priority_id);
    json!({
        "self": format!("{base}/rest/api/3/priority/{priority_id}"),
        "iconUrl": format!("{base}/images/icons/priorities/{}.svg", name.to_ascii_lowercase()),
        "name": name,
        "id": priority_id,
    })
}

/// GET /priority's fuller shape.
pub(crate) fn priorities_json(base: &str) -> Value {
    Value::Array(
        PRIORITIES
            .iter()
            .map(|(id, name, color)| {
                json!({
                    "self": format!("{base}/rest/api/3/priority/{id}"),
                    "statusColor": color,
                    "description": format!("{name} priority"),
                    "iconUrl": format!("{base}/images/icons/priorities/{}.svg", name.to_ascii_lowercase()),
                    "name": name,
                    "id": id,
                    "isDefault": *id == model::DEFAULT_PRIORITY_ID,
                })
            })
            .collect(),
    )
}

fn resolution_json(resolution_id: &str, base: &str) -> Value {
    let name = RESOLUTIONS
        .iter()
        .find(|(id, _)| *id == resolution_id)
        .map(|(_, n)| *n)
        .unwrap_or("Done");
    json!({
        "self": format!("{base}/rest/api/3/resolution/{resolution_id}"),
        "id": resolution_id,
        "description": "",
        "name": name,
    })
}

pub(crate) fn resolutions_json(base: &str) -> Vec<Value> {
    RESOLUTIONS
        .iter()
        .map(|(id, _)| resolution_json(id, base))
        .collect()
}

fn issue_type_json(type_id: &str, base: &str) -> Value {
    let name = ISSUE_TYPES
        .iter()
        .find(|(id, _)| *id == type_id)
        .map(|(_, n)| *n)
        .unwrap_or("Task");
    json!({
        "self": format!("{base}/rest/api/3/issuetype/{type_id}"),
        "id": type_id,
        "description": "",
        "iconUrl": format!("{base}/images/icons/issuetypes/generic.svg"),
        "name": name,
        "subtask": false,
        "hierarchyLevel": 0,
    })
}

pub(crate) fn project_json(state: &State, base: &str) -> Value {
    json!({
        "self": format!("{base}/rest/api/3/project/{PROJECT_ID}"),
        "id": PROJECT_ID,
        "key": state.config.project_key,
        "name": PROJECT_NAME,
        "projectTypeKey": "service_desk",
        "simplified": false,
    })
}

pub(crate) fn component_json(state: &State, name: &str, base: &str) -> Value {
    let id = state
        .config
        .components
        .iter()
        .position(|c| c == name)
        .map(model::component_id)
        .unwrap_or_else(|| "10000".to_string());
    json!({"self": format!("{base}/rest/api/3/component/{id}"), "id": id, "name": name})
}

pub(crate) fn sync_option_json(base: &str) -> Value {
    json!({
        "self": format!("{base}/rest/api/3/customFieldOption/{SYNC_OPTION_ID}"),
        "value": SYNC_OPTION_VALUE,
        "id": SYNC_OPTION_ID,
    })
}

pub(crate) fn attachment_json(state: &State, attachment: &Attachment, base: &str) -> Value {
    json!({
        "self": format!("{base}/rest/api/3/attachment/{}", attachment.id),
        "id": attachment.id.to_string(),
        "filename": attachment.filename,
        "author": user_json(state, &attachment.author, base),
        "created": jira_time(attachment.created),
        "size": attachment.size,
        "mimeType": attachment.mime_type,
        "content": format!("{base}/rest/api/3/attachment/content/{}", attachment.id),
    })
}

/// GET /attachment/{id}: the AttachmentMetadata schema, whose `id` is an integer.
pub(crate) fn attachment_metadata_json(
    state: &State,
    attachment: &Attachment,
    base: &str,
) -> Value {
    let mut value = attachment_json(state, attachment, base);
    value["id"] = json!(attachment.id);
    value["properties"] = json!({});
    value
}

pub(crate) struct CommentOptions {
    pub properties: bool,
    pub rendered: bool,
}

pub(crate) fn comment_json(
    state: &State,
    issue_id: u64,
    comment: &Comment,
    base: &str,
    options: &CommentOptions,
) -> Value {
    let mut out = Map::new();
    out.insert(
        "self".into(),
        json!(format!(
            "{base}/rest/api/3/issue/{issue_id}/comment/{}",
            comment.id
        )),
    );
    out.insert("id".into(), json!(comment.id.to_string()));
    out.insert("author".into(), user_json(state, &comment.author, base));
    out.insert("body".into(), comment.body.clone());
    if options.rendered {
        out.insert("renderedBody".into(), json!(render_html(&comment.body)));
    }
    out.insert(
        "updateAuthor".into(),
        user_json(state, &comment.update_author, base),
    );
    out.insert("created".into(), json!(jira_time(comment.created)));
    out.insert("updated".into(), json!(jira_time(comment.updated)));
    out.insert("jsdPublic".into(), json!(!comment.is_internal()));
    if let Some(v) = &comment.visibility {
        out.insert("visibility".into(), v.clone());
    }
    if options.properties {
        let props: Vec<Value> = comment
            .properties
            .iter()
            .map(|(k, v)| json!({"key": k, "value": v}))
            .collect();
        out.insert("properties".into(), Value::Array(props));
    }
    Value::Object(out)
}

/// A crude HTML rendering (escaped paragraphs): enough for `renderedFields` /
/// `renderedBody` to be present and readable.
fn render_html(doc: &Value) -> String {
    adf_to_text(doc)
        .split('\n')
        .map(|line| {
            let escaped = line
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;");
            format!("<p>{escaped}</p>")
        })
        .collect()
}

/// Display names of the fields an issue has (the `names` expansion).
pub(crate) fn field_names(state: &State) -> Vec<(String, String)> {
    let mut names: Vec<(String, String)> = [
        ("summary", "Summary"),
        ("description", "Description"),
        ("status", "Status"),
        ("priority", "Priority"),
        ("labels", "Labels"),
        ("components", "Components"),
        ("created", "Created"),
        ("updated", "Updated"),
        ("attachment", "Attachment"),
        ("comment", "Comment"),
        ("issuetype", "Issue Type"),
        ("project", "Project"),
        ("reporter", "Reporter"),
        ("creator", "Creator"),
        ("assignee", "Assignee"),
        ("resolution", "Resolution"),
        ("resolutiondate", "Resolved"),
        ("statuscategorychangedate", "Status Category Changed"),
    ]
    .iter()
    .map(|(id, name)| (id.to_string(), name.to_string()))
    .collect();
    names.push((
        state.config.sync_flag_field.clone(),
        state.config.sync_flag_field_name.clone(),
    ));
    names.push((
        state.config.google_case_field.clone(),
        state.config.google_case_field_name.clone(),
    ));
    names
}

pub(crate) fn issue_fields(
    state: &State,
    issue: &Issue,
    base: &str,
    selection: &FieldSelection,
) -> Map<String, Value> {
    let mut fields = Map::new();
    let config = &state.config;
    let mut put = |name: &str, value: &dyn Fn() -> Value| {
        if selection.includes(name) {
            fields.insert(name.to_string(), value());
        }
    };
    put("summary", &|| json!(issue.summary));
    put("description", &|| {
        issue.description.clone().unwrap_or(Value::Null)
    });
    put("status", &|| status_json(state, &issue.status_id, base));
    put("priority", &|| priority_json(&issue.priority_id, base));
    put("labels", &|| json!(issue.labels));
    put("components", &|| {
        Value::Array(
            issue
                .components
                .iter()
                .map(|c| component_json(state, c, base))
                .collect(),
        )
    });
    put("created", &|| json!(jira_time(issue.created)));
    put("updated", &|| json!(jira_time(issue.updated)));
    put("statuscategorychangedate", &|| {
        json!(jira_time(issue.status_changed))
    });
    put("attachment", &|| {
        Value::Array(
            issue
                .attachments
                .iter()
                .map(|a| attachment_json(state, a, base))
                .collect(),
        )
    });
    put("comment", &|| {
        let options = CommentOptions {
            properties: false,
            rendered: false,
        };
        let comments: Vec<Value> = issue
            .comments
            .iter()
            .map(|c| comment_json(state, issue.id, c, base, &options))
            .collect();
        json!({
            "comments": comments,
            "self": format!("{base}/rest/api/3/issue/{}/comment", issue.id),
            "maxResults": comments.len(),
            "total": comments.len(),
            "startAt": 0,
        })
    });
    put("issuetype", &|| issue_type_json(&issue.issue_type_id, base));
    put("project", &|| project_json(state, base));
    put("reporter", &|| user_json(state, &issue.reporter, base));
    put("creator", &|| user_json(state, &issue.creator, base));
    put("assignee", &|| Value::Null);
    put("resolution", &|| {
        issue
            .resolution_id
            .as_deref()
            .map(|r| resolution_json(r, base))
            .unwrap_or(Value::Null)
    });
    put("resolutiondate", &|| {
        issue
            .resolution_date
            .map(|t| json!(jira_time(t)))
            .unwrap_or(Value::Null)
    });
    put(&config.sync_flag_field, &|| {
        if issue.sync_flag {
            json!([sync_option_json(base)])
        } else {
            Value::Null
        }
    });
    put(&config.google_case_field, &|| {
        issue
            .google_case
            .as_ref()
            .map(|s| json!(s))
            .unwrap_or(Value::Null)
    });
    fields
}

pub(crate) fn transition_json(
    state: &State,
    transition: &JiraTransition,
    base: &str,
    with_fields: bool,
    available: bool,
) -> Value {
    let to_id = state
        .status_by_name_or_id(&transition.to)
        .map(|s| s.id.clone())
        .unwrap_or_else(|| transition.to.clone());
    let mut out = json!({
        "id": transition.id,
        "name": transition.name,
        "to": status_json(state, &to_id, base),
        "hasScreen": !transition.screen_fields.is_empty(),
        "isGlobal": transition.from.is_empty(),
        "isInitial": false,
        "isAvailable": available,
        "isConditional": false,
        "isLooped": false,
    });
    if with_fields {
        let mut fields = Map::new();
        for field in &transition.screen_fields {
            if field == "resolution" {
                fields.insert(
                    field.clone(),
                    json!({
                        "required": false,
                        "schema": {"type": "resolution", "system": "resolution"},
                        "name": "Resolution",
                        "key": "resolution",
                        "hasDefaultValue": false,
                        "operations": ["set"],
                        "allowedValues": resolutions_json(base),
                    }),
                );
            }
        }
        out["fields"] = Value::Object(fields);
    }
    out
}

pub(crate) fn issue_json(
    state: &State,
    issue: &Issue,
    base: &str,
    selection: &FieldSelection,
    expand: &HashSet<String>,
) -> Value {
    let mut out = Map::new();
    out.insert(
        "expand".into(),
        json!("renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations"),
    );
    out.insert("id".into(), json!(issue.id.to_string()));
    out.insert(
        "self".into(),
        json!(format!("{base}/rest/api/3/issue/{}", issue.id)),
    );
    out.insert("key".into(), json!(issue.key));
    out.insert(
        "fields".into(),
        Value::Object(issue_fields(state, issue, base, selection)),
    );
    if expand.contains("names") {
        let names: Map<String, Value> = field_names(state)
            .into_iter()
            .filter(|(id, _)| selection.includes(id))
            .map(|(id, name)| (id, json!(name)))
            .collect();
        out.insert("names".into(), Value::Object(names));
    }
    if expand.contains("renderedFields") {
        let mut rendered = Map::new();
        if selection.includes("description") {
            rendered.insert(
                "description".into(),
                issue
                    .description
                    .as_ref()
                    .map(|d| json!(render_html(d)))
                    .unwrap_or(Value::Null),
            );
        }
        out.insert("renderedFields".into(), Value::Object(rendered));
    }
    if expand.contains("transitions") {
        let transitions: Vec<Value> = state
            .transitions_from(&issue.status_id)
            .into_iter()
            .map(|t| transition_json(state, t, base, false, true))
            .collect();
        out.insert("transitions".into(), Value::Array(transitions));
    }
    Value::Object(out)
}

/// The control API's view: plain text next to ADF, flat names, everything a test wants
/// to assert on.
pub(crate) fn control_issue_json(state: &State, issue: &Issue) -> Value {
    let category = state.category_of(&issue.status_id);
    let status_name = state
        .status(&issue.status_id)
        .map(|s| s.name.clone())
        .unwrap_or_default();
    let person = |account: &str| person_json(state, account);
    let comments: Vec<Value> = issue
        .comments
        .iter()
        .map(|c| control_comment_json(state, c))
        .collect();
    let attachments: Vec<Value> = issue
        .attachments
        .iter()
        .map(|a| control_attachment_json(state, a))
        .collect();
    json!({
        "id": issue.id.to_string(),
        "key": issue.key,
        "summary": issue.summary,
        "description": issue.description_text(),
        "descriptionAdf": issue.description,
        "status": status_name,
        "statusCategory": category.key(),
        "resolution": issue.resolution_id.as_deref().and_then(|r| RESOLUTIONS.iter().find(|(id, _)| *id == r)).map(|(_, n)| *n),
        "priority": model::priority_name(&issue.priority_id),
        "priorityId": issue.priority_id,
        "labels": issue.labels,
        "components": issue.components,
        "syncFlag": issue.sync_flag,
        "googleCaseName": issue.google_case,
        "reporter": person(&issue.reporter),
        "creator": person(&issue.creator),
        "created": jira_time(issue.created),
        "updated": jira_time(issue.updated),
        "comments": comments,
        "attachments": attachments,
    })
}

fn person_json(state: &State, account: &str) -> Value {
    json!({
        "accountId": account,
        "displayName": state.user(account).map(|u| u.display_name.as_str()).unwrap_or(account),
    })
}

pub(crate) fn control_comment_json(state: &State, comment: &Comment) -> Value {
    json!({
        "id": comment.id.to_string(),
        "author": person_json(state, &comment.author),
        "bodyText": adf_to_text(&comment.body),
        "body": comment.body,
        "internal": comment.is_internal(),
        "properties": comment.properties,
        "created": jira_time(comment.created),
        "updated": jira_time(comment.updated),
    })
}

pub(crate) fn control_attachment_json(state: &State, attachment: &Attachment) -> Value {
    json!({
        "id": attachment.id.to_string(),
        "filename": attachment.filename,
        "mimeType": attachment.mime_type,
        "size": attachment.size,
        "author": person_json(state, &attachment.author),
        "created": jira_time(attachment.created),
    })
}
