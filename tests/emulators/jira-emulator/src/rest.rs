//! The platform REST API v3 handlers: issues, comments, attachments, transitions, JQL
//! search, and the small lookups (myself, priorities, fields). Each follows the OpenAPI
//! document's paths, parameters, status codes and field names, so a client that works
//! here works against a real Jira Cloud site.

use std::collections::{BTreeMap, HashSet};
use std::hash::Hasher;

use axum::Json;
use axum::body::Bytes;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{Extension, Multipart, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::JiraEmulator;
use crate::adf::validate_adf;
use crate::errors::ApiError;
use crate::fields::{Draft, Mode, apply_request};
use crate::gate::{Caller, QueryParams};
use crate::jql::{self, JqlContext, SortVal};
use crate::model::{MAX_ATTACHMENT_BYTES, PRIORITIES, jira_time, now_ms, resolution_by_name_or_id};
use crate::render::{
    self, CommentOptions, FieldSelection, attachment_json, attachment_metadata_json, comment_json,
    expand_set, issue_json, user_json,
};
use crate::state::State as EmuState;

type ApiResult<T> = Result<T, ApiError>;

/// Reads a JSON object body the way Jira does: the wrong media type is 415, anything but
/// a JSON object is 400.
pub(crate) fn json_object(headers: &HeaderMap, body: &Bytes) -> ApiResult<Map<String, Value>> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if !content_type.starts_with("application/json") {
        return Err(ApiError::unsupported_media_type());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(ApiError::invalid_payload()),
    }
}

fn find_issue(state: &EmuState, id_or_key: &str) -> ApiResult<u64> {
    state
        .find_issue(id_or_key)
        .ok_or_else(ApiError::issue_not_found)
}

pub(crate) async fn get_myself(
    State(emu): State<JiraEmulator>,
    Extension(caller): Extension<Caller>,
) -> Json<Value> {
    let state = emu.lock();
    let mut user = user_json(&state, &caller.account_id, &caller.base_url);
    user["locale"] = json!("en_US");
    user["groups"] = json!({"size": 1, "items": []});
    user["applicationRoles"] = json!({"size": 1, "items": []});
    user["expand"] = json!("groups,applicationRoles");
    Json(user)
}

pub(crate) async fn get_server_info(
    State(emu): State<JiraEmulator>,
    Extension(caller): Extension<Caller>,
) -> Json<Value> {
    let state = emu.lock();
    Json(json!({
        "baseUrl": caller.base_url,
        "displayUrl": caller.base_url,
        "version": "1001.0.0-SNAPSHOT",
        "versionNumbers": [1001, 0, 0],
        "deploymentType": "Cloud",
        "buildNumber": 100_000,
        "buildDate": "2026-01-01T00:00:00.000+0000",
        "serverTime": jira_time(now_ms()),
        "serverTimeZone": state.config.time_zone,
        "scmInfo": "jira-emulator",
        "serverTitle": "Jira (casesync emulator)",
        "defaultLocale": {"locale": "en_US"},
    }))
}

pub(crate) async fn create_issue(
    State(emu): State<JiraEmulator>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let body = json_object(&headers, &body)?;
    let mut state = emu.lock();
    let mut draft = Draft::default();
    apply_request(&state, &mut draft, &body, Mode::Create)?;
    let id = state.create_issue(draft, &caller.account_id, now_ms());
    let key = state
        .issues
        .get(&id)
        .map(|i| i.key.clone())
        .unwrap_or_default();
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "id": id.to_string(),
            "key": key,
            "self": format!("{}/rest/api/3/issue/{id}", caller.base_url),
        })),
    ))
}

pub(crate) async fn get_issue(
    State(emu): State<JiraEmulator>,
    Extension(caller): Extension<Caller>,
    Path(issue_id_or_key): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let query = QueryParams::parse(raw.as_deref());
    let selection = FieldSelection::parse(&query.all("fields"), "*all");
    let expand = expand_set(&query.all("expand"));
    let state = emu.lock();
    let id = find_issue(&state, &issue_id_or_key)?;
    let issue = state
        .issues
        .get(&id)
        .ok_or_else(ApiError::issue_not_found)?;
    Ok(Json(issue_json(
        &state,
        issue,
        &caller.base_url,
        &selection,
        &expand,
    )))
}

pub(crate) async fn edit_issue(
    State(emu): State<JiraEmulator>,
    Extension(caller): Extension<Caller>,
    Path(issue_id_or_key): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let query = QueryParams::parse(raw.as_deref());
    let body = json_object(&headers, &body)?;
    let mut state = emu.lock();
    let id = find_issue(&state, &issue_id_or_key)?;
    let issue = state
        .issues
        .get(&id)
        .ok_or_else(ApiError::issue_not_found)?;
    let mut draft = EmuState::draft_of(issue);
    apply_request(&state, &mut draft, &body, Mode::Edit)?;
    state.apply_draft(id, draft, now_ms());
    if query.bool("returnIssue", false) {
        let issue = state
            .issues
            .get(&id)
            .ok_or_else(ApiError::issue_not_found)?;
        let expand = expand_set(&query.all("expand"));
        let value = issue_json(
            &state,
            issue,
            &caller.base_url,
            &FieldSelection::all(),
            &expand,
        );
        return Ok((StatusCode::OK, Json(value)).into_response());
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(crate) async fn get_edit_meta(
    State(emu): State<JiraEmulator>,
    Extension(caller): Extension<Caller>,
    Path(issue_id_or_key): Path<String>,
) -> ApiResult<Json<Value>> {
    let state = emu.lock();
    find_issue(&state, &issue_id_or_key)?;
    let base = &caller.base_url;
    let config = &state.config;
    let system = |id: &str, name: &str, kind: &str, ops: &[&str], required: bool| {
        json!({
            "required": required,
            "schema": {"type": kind, "system": id},
            "name": name,
            "key": id,
            "operations": ops,
        })
    };
    let mut fields = Map::new();
    fields.insert(
        "summary".into(),
        system("summary", "Summary", "string", &["set"], true),
    );
    fields.insert(
        "description".into(),
        system("description", "Description", "string", &["set"], false),
    );
    let mut priority = system("priority", "Priority", "priority", &["set"], false);
    priority["allowedValues"] = Value::Array(
        PRIORITIES
            .iter()
            .map(|(id, _, _)| render::priority_json(id, base))
            .collect(),
    );
    fields.insert("priority".into(), priority);
    let mut labels = system(
        "labels",
        "Labels",
        "array",
        &["add", "set", "remove"],
        false,
    );
    labels["schema"]["items"] = json!("string");
    fields.insert("labels".into(), labels);
    let mut components = system(
        "components",
        "Components",
        "array",
        &["add", "set", "remove"],
        false,
    );
    components["schema"]["items"] = json!("component");
    components["allowedValues"] = Value::Array(
        config
            .components
            .iter()
            .map(|c| render::component_json(&state, c, base))
            .collect(),
    );
    fields.insert("components".into(), components);
    fields.insert(
        config.sync_flag_field.clone(),
        json!({
            "required": false,
            "schema": {
                "type": "array",
                "items": "option",
                "custom": "com.atlassian.jira.plugin.system.customfieldtypes:multicheckboxes",
                "customId": custom_id(&config.sync_flag_field),
            },
            "name": config.sync_flag_field_name,
            "key": config.sync_flag_field,
            "operations": ["add", "set", "remove"],
            "allowedValues": [render::sync_option_json(base)],
        }),
    );
    fields.insert(
        config.google_case_field.clone(),
        json!({
            "required": false,
            "schema": {
                "type": "string",
                "custom": "com.atlassian.jira.plugin.system.customfieldtypes:textfield",
                "customId": custom_id(&config.google_case_field),
            },
            "name": config.google_case_field_name,
            "key": config.google_case_field,
            "operations": ["set"],
        }),
    );
    Ok(Json(json!({"fields": fields})))
}

fn custom_id(field: &str) -> Value {
    field
        .strip_prefix("customfield_")
        .and_then(|n| n.parse::<u64>().ok())
        .map(|n| json!(n))
        .unwrap_or(Value::Null)
}

pub(crate) async fn get_transitions(
    State(emu): State<JiraEmulator>,
    Extension(caller): Extension<Caller>,
    Path(issue_id_or_key): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let query = QueryParams::parse(raw.as_deref());
    let expand = expand_set(&query.all("expand"));
    let with_fields = expand.contains("transitions.fields");
    let only = query.get("transitionId").map(str::to_string);
    let include_unavailable = query.bool("includeUnavailableTransitions", false);
    let state = emu.lock();
    let id = find_issue(&state, &issue_id_or_key)?;
    let issue = state
        .issues
        .get(&id)
        .ok_or_else(ApiError::issue_not_found)?;
    let available: HashSet<&str> = state
        .transitions_from(&issue.status_id)
        .iter()
        .map(|t| t.id.as_str())
        .collect();
    let transitions: Vec<Value> = state
        .config
        .workflow
        .transitions
        .iter()
        .filter(|t| include_unavailable || available.contains(t.id.as_str()))
        .filter(|t| only.as_deref().is_none_or(|o| o == t.id))
        .map(|t| {
            render::transition_json(
                &state,
                t,
                &caller.base_url,
                with_fields,
                available.contains(t.id.as_str()),
            )
        })
        .collect();
    Ok(Json(
        json!({"expand": "transitions", "transitions": transitions}),
    ))
}

fn string_or_number(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

pub(crate) async fn do_transition(
    State(emu): State<JiraEmulator>,
    Extension(caller): Extension<Caller>,
    Path(issue_id_or_key): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let body = json_object(&headers, &body)?;
    let mut state = emu.lock();
    let id = find_issue(&state, &issue_id_or_key)?;
    let status_id = state
        .issues
        .get(&id)
        .map(|i| i.status_id.clone())
        .ok_or_else(ApiError::issue_not_found)?;
    let transition_id = string_or_number(body.get("transition").and_then(|t| t.get("id")))
        .ok_or_else(|| ApiError::bad_request("'transition' identifier must be specified."))?;
    let transition = state
        .transitions_from(&status_id)
        .into_iter()
        .find(|t| t.id == transition_id)
        .cloned()
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "Transition id '{transition_id}' is not valid for this issue."
            ))
        })?;
    let target = state
        .status_by_name_or_id(&transition.to)
        .map(|s| s.id.clone())
        .ok_or_else(|| {
            ApiError::message(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("The workflow has no status '{}'.", transition.to),
            )
        })?;

    let mut errors = BTreeMap::new();
    let mut resolution = None;
    match body.get("fields") {
        None | Some(Value::Null) => {}
        Some(Value::Object(fields)) => {
            for (name, value) in fields {
                if !transition.screen_fields.iter().any(|f| f == name) {
                    errors.insert(
                        name.clone(),
                        format!(
                            "Field '{name}' cannot be set. It is not on the appropriate screen, or unknown."
                        ),
                    );
                } else if name == "resolution" {
                    let wanted = string_or_number(value.get("name"))
                        .or_else(|| string_or_number(value.get("id")))
                        .unwrap_or_default();
                    match resolution_by_name_or_id(&wanted) {
                        Some((rid, _)) => resolution = Some(rid.to_string()),
                        None => {
                            errors.insert(
                                name.clone(),
                                format!("Resolution '{wanted}' is not valid."),
                            );
                        }
                    }
                }
            }
        }
        Some(_) => return Err(ApiError::invalid_payload()),
    }
    let mut comments = Vec::new();
    match body.get("update") {
        None | Some(Value::Null) => {}
        Some(Value::Object(update)) => {
            for (name, ops) in update {
                if name != "comment" {
                    errors.insert(
                        name.clone(),
                        format!(
                            "Field '{name}' cannot be set. It is not on the appropriate screen, or unknown."
                        ),
                    );
                    continue;
                }
                for op in ops.as_array().ok_or_else(ApiError::invalid_payload)? {
                    match op.get("add").and_then(|a| a.get("body")) {
                        Some(doc) if validate_adf(doc).is_ok() => comments.push(doc.clone()),
                        _ => {
                            errors.insert(
                                "comment".to_string(),
                                "Comment body is not valid!".to_string(),
                            );
                        }
                    }
                }
            }
        }
        Some(_) => return Err(ApiError::invalid_payload()),
    }
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    let now = now_ms();
    state.move_to_status(id, &target, resolution, now);
    for doc in comments {
        state.add_comment(id, &caller.account_id, doc, BTreeMap::new(), None, now);
    }
    Ok(StatusCode::NO_CONTENT)
}

fn comment_options(expand: &HashSet<String>) -> CommentOptions {
    CommentOptions {
        properties: expand.contains("properties"),
        rendered: expand.contains("renderedBody"),
    }
}

/// Jira silently caps comment pages; clients must follow `maxResults` in the answer.
const MAX_COMMENT_PAGE: i64 = 100;

pub(crate) async fn get_comments(
    State(emu): State<JiraEmulator>,
    Extension(caller): Extension<Caller>,
    Path(issue_id_or_key): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let query = QueryParams::parse(raw.as_deref());
    let start_at = query.int("startAt")?.unwrap_or(0).max(0);
    let max_results = query
        .int("maxResults")?
        .unwrap_or(MAX_COMMENT_PAGE)
        .clamp(0, MAX_COMMENT_PAGE);
    let descending = match query.get("orderBy") {
        None | Some("") | Some("created") | Some("+created") => false,
        Some("-created") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "The value '{other}' is not valid for orderBy. Valid values are 'created', '+created' and '-created'."
            )));
        }
    };
    let options = comment_options(&expand_set(&query.all("expand")));
    let state = emu.lock();
    let id = find_issue(&state, &issue_id_or_key)?;
    let issue = state
        .issues
        .get(&id)
        .ok_or_else(ApiError::issue_not_found)?;
    let mut comments: Vec<_> = issue.comments.iter().collect();
    comments.sort_by_key(|c| (c.created, c.id));
    if descending {
        comments.reverse();
    }
    let total = comments.len();
    let page: Vec<Value> = comments
        .into_iter()
        .skip(usize::try_from(start_at).unwrap_or(usize::MAX))
        .take(usize::try_from(max_results).unwrap_or(0))
        .map(|c| comment_json(&state, id, c, &caller.base_url, &options))
        .collect();
    Ok(Json(json!({
        "startAt": start_at,
        "maxResults": max_results,
        "total": total,
        "comments": page,
    })))
}

pub(crate) async fn get_comment(
    State(emu): State<JiraEmulator>,
    Extension(caller): Extension<Caller>,
    Path((issue_id_or_key, comment_id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let query = QueryParams::parse(raw.as_deref());
    let options = comment_options(&expand_set(&query.all("expand")));
    let state = emu.lock();
    let id = find_issue(&state, &issue_id_or_key)?;
    let issue = state
        .issues
        .get(&id)
        .ok_or_else(ApiError::issue_not_found)?;
    issue
        .comments
        .iter()
        .find(|c| c.id.to_string() == comment_id)
        .map(|c| Json(comment_json(&state, id, c, &caller.base_url, &options)))
        .ok_or_else(|| comment_not_found(&comment_id))
}

fn comment_not_found(comment_id: &str) -> ApiError {
    ApiError::message(
        StatusCode::NOT_FOUND,
        format!("Can not find a comment for the id: {comment_id}."),
    )
}

pub(crate) async fn add_comment(
    State(emu): State<JiraEmulator>,
    Extension(caller): Extension<Caller>,
    Path(issue_id_or_key): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let query = QueryParams::parse(raw.as_deref());
    let options = comment_options(&expand_set(&query.all("expand")));
    let body = json_object(&headers, &body)?;
    let mut state = emu.lock();
    let id = find_issue(&state, &issue_id_or_key)?;
    let doc = body
        .get("body")
        .filter(|d| validate_adf(d).is_ok())
        .cloned()
        .ok_or_else(|| ApiError::field("comment", "Comment body is not valid!"))?;
    let mut properties = BTreeMap::new();
    match body.get("properties") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for item in items {
                let key = item
                    .get("key")
                    .and_then(Value::as_str)
                    .filter(|k| !k.is_empty())
                    .ok_or_else(ApiError::invalid_payload)?;
                properties.insert(
                    key.to_string(),
                    item.get("value").cloned().unwrap_or(Value::Null),
                );
            }
        }
        Some(_) => return Err(ApiError::invalid_payload()),
    }
    let visibility = match body.get("visibility") {
        None | Some(Value::Null) => None,
        Some(v @ Value::Object(_)) => Some(v.clone()),
        Some(_) => return Err(ApiError::invalid_payload()),
    };
    let comment_id = state
        .add_comment(
            id,
            &caller.account_id,
            doc,
            properties,
            visibility,
            now_ms(),
        )
        .ok_or_else(ApiError::issue_not_found)?;
    let issue = state
        .issues
        .get(&id)
        .ok_or_else(ApiError::issue_not_found)?;
    let comment = issue
        .comments
        .iter()
        .find(|c| c.id == comment_id)
        .ok_or_else(ApiError::issue_not_found)?;
    Ok((
        StatusCode::CREATED,
        Json(comment_json(
            &state,
            id,
            comment,
            &caller.base_url,
            &options,
        )),
    ))
}

pub(crate) async fn get_comment_property_keys(
    State(emu): State<JiraEmulator>,
    Extension(caller): Extension<Caller>,
    Path(comment_id): Path<String>,
) -> ApiResult<Json<Value>> {
    let state = emu.lock();
    let (_, comment) = comment_id
        .parse::<u64>()
        .ok()
        .and_then(|id| state.find_comment(id))
        .ok_or_else(|| comment_not_found(&comment_id))?;
    let keys: Vec<Value> = comment
        .properties
        .keys()
        .map(|k| {
            json!({
                "key": k,
                "self": format!("{}/rest/api/3/comment/{comment_id}/properties/{k}", caller.base_url),
            })
        })
        .collect();
    Ok(Json(json!({"keys": keys})))
}

pub(crate) async fn get_comment_property(
    State(emu): State<JiraEmulator>,
    Path((comment_id, property_key)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let state = emu.lock();
    let (_, comment) = comment_id
        .parse::<u64>()
        .ok()
        .and_then(|id| state.find_comment(id))
        .ok_or_else(|| comment_not_found(&comment_id))?;
    comment
        .properties
        .get(&property_key)
        .map(|value| Json(json!({"key": property_key, "value": value})))
        .ok_or_else(|| {
            ApiError::message(
                StatusCode::NOT_FOUND,
                format!("The property with key '{property_key}' does not exist."),
            )
        })
}

fn guess_mime(filename: &str) -> &'static str {
    let ext = filename
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "txt" | "log" => "text/plain",
        "json" => "application/json",
        "pdf" => "application/pdf",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "zip" => "application/zip",
        "gz" => "application/gzip",
        "csv" => "text/csv",
        "html" | "htm" => "text/html",
        _ => "application/octet-stream",
    }
}

pub(crate) async fn add_attachment(
    State(emu): State<JiraEmulator>,
    Extension(caller): Extension<Caller>,
    Path(issue_id_or_key): Path<String>,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> ApiResult<Json<Value>> {
    let token_ok = headers
        .get("x-atlassian-token")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("no-check"));
    if !token_ok {
        return Err(ApiError::xsrf_failed());
    }
    if emu.lock().find_issue(&issue_id_or_key).is_none() {
        return Err(ApiError::issue_not_found());
    }
    let mut multipart = multipart.map_err(|_| {
        ApiError::message(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "The request must be multipart/form-data with a part named 'file'.",
        )
    })?;
    let too_large = || {
        ApiError::message(
            StatusCode::PAYLOAD_TOO_LARGE,
            "The attachment exceeds the maximum attachment size for issues.",
        )
    };
    let mut files = Vec::new();
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => return Err(too_large()),
            Err(_) => return Err(ApiError::bad_request("The multipart request is malformed.")),
        };
        if field.name() != Some("file") {
            continue;
        }
        let filename = field.file_name().unwrap_or("file").to_string();
        let mime = field
            .content_type()
            .map(str::to_string)
            .unwrap_or_else(|| guess_mime(&filename).to_string());
        let data = match field.bytes().await {
            Ok(data) => data,
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => return Err(too_large()),
            Err(_) => return Err(ApiError::bad_request("The multipart request is malformed.")),
        };
        if data.len() > MAX_ATTACHMENT_BYTES {
            return Err(too_large());
        }
        files.push((filename, mime, data));
    }
    if files.len() > 60 {
        return Err(ApiError::message(
            StatusCode::PAYLOAD_TOO_LARGE,
            "More than 60 files were requested to be uploaded.",
        ));
    }
    if files.is_empty() {
        return Err(ApiError::bad_request(
            "No attachments were found in the request: send the file in a part named 'file'.",
        ));
    }
    let mut state = emu.lock();
    let id = find_issue(&state, &issue_id_or_key)?;
    let now = now_ms();
    let mut created = Vec::new();
    for (filename, mime, data) in files {
        if let Some(aid) = state.add_attachment(id, &caller.account_id, &filename, &mime, data, now)
        {
            created.push(aid);
        }
    }
    let issue = state
        .issues
        .get(&id)
        .ok_or_else(ApiError::issue_not_found)?;
    let out: Vec<Value> = issue
        .attachments
        .iter()
        .filter(|a| created.contains(&a.id))
        .map(|a| attachment_json(&state, a, &caller.base_url))
        .collect();
    Ok(Json(Value::Array(out)))
}

fn attachment_not_found(id: &str) -> ApiError {
    ApiError::message(
        StatusCode::NOT_FOUND,
        format!("The attachment with id '{id}' does not exist"),
    )
}

pub(crate) async fn get_attachment(
    State(emu): State<JiraEmulator>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let state = emu.lock();
    let (_, attachment) = id
        .parse::<u64>()
        .ok()
        .and_then(|n| state.find_attachment(n))
        .ok_or_else(|| attachment_not_found(&id))?;
    Ok(Json(attachment_metadata_json(
        &state,
        attachment,
        &caller.base_url,
    )))
}

/// Jira answers 303 to a self-authorising media URL; `redirect=false` serves the bytes.
pub(crate) async fn get_attachment_content(
    State(emu): State<JiraEmulator>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let query = QueryParams::parse(raw.as_deref());
    let redirect = query.bool("redirect", true);
    let state = emu.lock();
    let attachment_id = id
        .parse::<u64>()
        .ok()
        .filter(|n| state.find_attachment(*n).is_some())
        .ok_or_else(|| attachment_not_found(&id))?;
    if redirect {
        let location = format!(
            "{}/_media/file/{}",
            caller.base_url,
            state.media_token(attachment_id)
        );
        let mut response = StatusCode::SEE_OTHER.into_response();
        if let Ok(value) = HeaderValue::from_str(&location) {
            response.headers_mut().insert(header::LOCATION, value);
        }
        return Ok(response);
    }
    serve_attachment(&state, attachment_id, &headers)
}

/// The media host behind the redirect: no credentials, the token is the permission.
pub(crate) async fn media_download(
    State(emu): State<JiraEmulator>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Response {
    let state = emu.lock();
    match state.attachment_for_media_token(&token) {
        Some(id) => serve_attachment(&state, id, &headers).unwrap_or_else(|e| e.into_response()),
        None => (StatusCode::NOT_FOUND, "Not found").into_response(),
    }
}

fn serve_attachment(state: &EmuState, id: u64, headers: &HeaderMap) -> ApiResult<Response> {
    let (_, attachment) = state
        .find_attachment(id)
        .ok_or_else(|| attachment_not_found(&id.to_string()))?;
    let data = state
        .blobs
        .get(&id)
        .cloned()
        .ok_or_else(|| attachment_not_found(&id.to_string()))?;
    let len = data.len();
    let safe_name: String = attachment
        .filename
        .chars()
        .map(|c| {
            if (c.is_ascii_graphic() && c != '"') || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut builder = Response::builder()
        .header(header::CONTENT_TYPE, attachment.mime_type.as_str())
        .header(
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{safe_name}\""),
        )
        .header(header::ACCEPT_RANGES, "bytes");
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let (status, body) = match range {
        None => (StatusCode::OK, data),
        Some(spec) => {
            let (start, end) = parse_range(spec, len)?;
            builder = builder.header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{len}"));
            (StatusCode::PARTIAL_CONTENT, data.slice(start..=end))
        }
    };
    builder
        .status(status)
        .body(axum::body::Body::from(body))
        .map_err(|_| ApiError::message(StatusCode::INTERNAL_SERVER_ERROR, "response build failed"))
}

/// One `bytes=a-b` range; malformed is 400 and unsatisfiable 416, as the spec says.
fn parse_range(spec: &str, len: usize) -> ApiResult<(usize, usize)> {
    let malformed = || ApiError::bad_request("The Range header is malformed.");
    let unsatisfiable = || {
        let mut e = ApiError::message(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "The requested range cannot be satisfied.",
        );
        e.headers
            .push((header::CONTENT_RANGE, format!("bytes */{len}")));
        e
    };
    let ranges = spec.trim().strip_prefix("bytes=").ok_or_else(malformed)?;
    if ranges.contains(',') {
        return Err(malformed());
    }
    let (a, b) = ranges.split_once('-').ok_or_else(malformed)?;
    let (a, b) = (a.trim(), b.trim());
    let (start, end) = match (a.is_empty(), b.is_empty()) {
        (true, true) => return Err(malformed()),
        (true, false) => {
            let suffix: usize = b.parse().map_err(|_| malformed())?;
            if suffix == 0 || len == 0 {
                return Err(unsatisfiable());
            }
            (len.saturating_sub(suffix), len - 1)
        }
        (false, _) => {
            let start: usize = a.parse().map_err(|_| malformed())?;
            let end: usize = if b.is_empty() {
                len.saturating_sub(1)
            } else {
                b.parse().map_err(|_| malformed())?
            };
            if start > end {
                return Err(malformed());
            }
            (start, end.min(len.saturating_sub(1)))
        }
    };
    if len == 0 || start >= len {
        return Err(unsatisfiable());
    }
    Ok((start, end))
}

// ---------------------------------------------------------------------------------------
// Search

/// The POST body of the enhanced search; `additionalProperties: false` in the spec, so
/// unknown keys are refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SearchBody {
    expand: Option<String>,
    fields: Option<Vec<String>>,
    // Accepted because the spec allows them; the emulator has no issue properties and
    // field keys equal field ids, so neither changes the answer.
    #[allow(dead_code)]
    fields_by_keys: Option<bool>,
    jql: Option<String>,
    max_results: Option<i64>,
    next_page_token: Option<String>,
    #[allow(dead_code)]
    properties: Option<Vec<String>>,
    reconcile_issues: Option<Vec<u64>>,
}

struct SearchRequest {
    jql: String,
    next_page_token: Option<String>,
    max_results: Option<i64>,
    fields: Vec<String>,
    expand: Vec<String>,
    reconcile: Vec<u64>,
}

#[derive(Serialize, Deserialize)]
struct PageToken {
    /// Fingerprint of the JQL the token belongs to.
    q: String,
    /// Sort key of the last issue returned.
    k: Vec<SortVal>,
    /// Id of the last issue returned.
    i: u64,
}

fn fingerprint(jql: &str) -> String {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    hasher.write(jql.as_bytes());
    format!("{:016x}", hasher.finish())
}

fn invalid_token() -> ApiError {
    ApiError::bad_request("The provided nextPageToken is invalid or has expired.")
}

pub(crate) async fn search_jql_get(
    State(emu): State<JiraEmulator>,
    Extension(caller): Extension<Caller>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let query = QueryParams::parse(raw.as_deref());
    let mut reconcile = Vec::new();
    for value in query.all("reconcileIssues") {
        for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            reconcile.push(part.parse::<u64>().map_err(|_| {
                ApiError::bad_request(format!(
                    "The value '{part}' is invalid for the parameter 'reconcileIssues'."
                ))
            })?);
        }
    }
    let request = SearchRequest {
        jql: query.get("jql").unwrap_or("").to_string(),
        next_page_token: query
            .get("nextPageToken")
            .filter(|t| !t.is_empty())
            .map(str::to_string),
        max_results: query.int("maxResults")?,
        fields: query.all("fields"),
        expand: query.all("expand"),
        reconcile,
    };
    run_search(&emu, &caller, request).map(Json)
}

pub(crate) async fn search_jql_post(
    State(emu): State<JiraEmulator>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let object = json_object(&headers, &body)?;
    let parsed: SearchBody =
        serde_json::from_value(Value::Object(object)).map_err(|_| ApiError::invalid_payload())?;
    let request = SearchRequest {
        jql: parsed.jql.unwrap_or_default(),
        next_page_token: parsed.next_page_token.filter(|t| !t.is_empty()),
        max_results: parsed.max_results,
        fields: parsed.fields.unwrap_or_default(),
        expand: parsed.expand.into_iter().collect(),
        reconcile: parsed.reconcile_issues.unwrap_or_default(),
    };
    run_search(&emu, &caller, request).map(Json)
}

fn run_search(emu: &JiraEmulator, caller: &Caller, request: SearchRequest) -> ApiResult<Value> {
    if request.reconcile.len() > 50 {
        return Err(ApiError::bad_request(
            "reconcileIssues accepts at most 50 issue ids.",
        ));
    }
    let state = emu.lock();
    let now = now_ms();
    let ctx = JqlContext {
        state: &state,
        now,
        caller: &caller.account_id,
    };
    let query = jql::parse(&request.jql, &ctx).map_err(|e| ApiError::bad_request(e.0))?;
    if query.filter.is_none() {
        return Err(ApiError::bad_request(
            "Unbounded JQL queries are not allowed here. Please add a search restriction to your query.",
        ));
    }
    let selection = FieldSelection::parse(&request.fields, "id");
    let cap = if selection.id_only() { 5000 } else { 100 };
    let max_results = match request.max_results {
        Some(n) if n < 0 => {
            return Err(ApiError::bad_request(
                "The value of 'maxResults' must not be negative.",
            ));
        }
        Some(n) => n.clamp(1, cap),
        None => 50.min(cap),
    };
    let print = fingerprint(&request.jql);
    let after = match &request.next_page_token {
        None => None,
        Some(token) => {
            let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(token)
                .map_err(|_| invalid_token())?;
            let token: PageToken = serde_json::from_slice(&bytes).map_err(|_| invalid_token())?;
            if token.q != print {
                return Err(invalid_token());
            }
            Some((token.k, token.i))
        }
    };
    let project_key = state.config.project_key.clone();
    let mut hits: Vec<(Vec<SortVal>, u64)> = state
        .issues
        .values()
        .filter_map(|issue| {
            let fresh = request.reconcile.contains(&issue.id);
            let doc = state.visible_doc(issue, now, fresh)?;
            query
                .matches(&doc, &project_key)
                .then(|| (query.sort_key(&doc), issue.id))
        })
        .collect();
    hits.sort_by(|a, b| query.compare((&a.0, a.1), (&b.0, b.1)));
    let start = match &after {
        None => 0,
        Some((key, id)) => hits
            .iter()
            .position(|h| query.compare((&h.0, h.1), (key, *id)) == std::cmp::Ordering::Greater)
            .unwrap_or(hits.len()),
    };
    let page_len = usize::try_from(max_results).unwrap_or(50);
    let end = (start + page_len).min(hits.len());
    let page = &hits[start..end];
    let is_last = end >= hits.len();

    let expand = expand_set(&request.expand);
    let mut issue_expand = expand.clone();
    issue_expand.remove("names");
    let issues: Vec<Value> = page
        .iter()
        .filter_map(|(_, id)| state.issues.get(id))
        .map(|issue| {
            if selection.id_only() {
                json!({"id": issue.id.to_string()})
            } else {
                issue_json(&state, issue, &caller.base_url, &selection, &issue_expand)
            }
        })
        .collect();
    let mut out = json!({"issues": issues, "isLast": is_last});
    if !is_last && let Some((key, id)) = page.last() {
        let token = PageToken {
            q: print,
            k: key.clone(),
            i: *id,
        };
        let bytes = serde_json::to_vec(&token).map_err(|_| invalid_token())?;
        out["nextPageToken"] =
            json!(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes));
    }
    if expand.contains("names") {
        let names: Map<String, Value> = render::field_names(&state)
            .into_iter()
            .filter(|(id, _)| selection.includes(id))
            .map(|(id, name)| (id, json!(name)))
            .collect();
        out["names"] = Value::Object(names);
    }
    Ok(out)
}

/// The old `/rest/api/3/search` has been removed from Jira Cloud (CHANGE-2046).
pub(crate) async fn search_removed() -> ApiError {
    ApiError::message(
        StatusCode::GONE,
        "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. A full migration guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046",
    )
}

pub(crate) async fn get_priorities(Extension(caller): Extension<Caller>) -> Json<Value> {
    Json(render::priorities_json(&caller.base_url))
}

pub(crate) async fn get_fields(State(emu): State<JiraEmulator>) -> Json<Value> {
    let state = emu.lock();
    let config = &state.config;
    let system = |id: &str, name: &str, kind: &str, clauses: &[&str]| {
        json!({
            "id": id,
            "key": id,
            "name": name,
            "custom": false,
            "orderable": true,
            "navigable": true,
            "searchable": true,
            "clauseNames": clauses,
            "schema": {"type": kind, "system": id},
        })
    };
    let mut fields = vec![
        system("summary", "Summary", "string", &["summary"]),
        system("description", "Description", "string", &["description"]),
        system("status", "Status", "status", &["status"]),
        system("priority", "Priority", "priority", &["priority"]),
        system("labels", "Labels", "array", &["labels"]),
        system("components", "Components", "array", &["component"]),
        system(
            "created",
            "Created",
            "datetime",
            &["created", "createdDate"],
        ),
        system(
            "updated",
            "Updated",
            "datetime",
            &["updated", "updatedDate"],
        ),
        system("attachment", "Attachment", "array", &["attachments"]),
        system("comment", "Comment", "comments-page", &["comment"]),
        system(
            "issuetype",
            "Issue Type",
            "issuetype",
            &["issuetype", "type"],
        ),
        system("project", "Project", "project", &["project"]),
        system("reporter", "Reporter", "user", &["reporter"]),
        system("creator", "Creator", "user", &["creator"]),
        system("assignee", "Assignee", "user", &["assignee"]),
        system("resolution", "Resolution", "resolution", &["resolution"]),
        system(
            "resolutiondate",
            "Resolved",
            "datetime",
            &["resolutiondate", "resolved"],
        ),
        system(
            "statuscategorychangedate",
            "Status Category Changed",
            "datetime",
            &["statusCategoryChangedDate"],
        ),
    ];
    fields.push(
        json!({"id": "issuekey", "key": "issuekey", "name": "Key", "custom": false,
        "orderable": false, "navigable": true, "searchable": false,
        "clauseNames": ["id", "issue", "issuekey", "key"]}),
    );
    let cf = |field: &str| {
        field
            .strip_prefix("customfield_")
            .map(|n| format!("cf[{n}]"))
            .unwrap_or_else(|| field.to_string())
    };
    fields.push(json!({
        "id": config.sync_flag_field,
        "key": config.sync_flag_field,
        "name": config.sync_flag_field_name,
        "untranslatedName": config.sync_flag_field_name,
        "custom": true,
        "orderable": true,
        "navigable": true,
        "searchable": true,
        "clauseNames": [cf(&config.sync_flag_field), config.sync_flag_field_name, format!("{}[Checkboxes]", config.sync_flag_field_name)],
        "schema": {
            "type": "array",
            "items": "option",
            "custom": "com.atlassian.jira.plugin.system.customfieldtypes:multicheckboxes",
            "customId": custom_id(&config.sync_flag_field),
        },
    }));
    fields.push(json!({
        "id": config.google_case_field,
        "key": config.google_case_field,
        "name": config.google_case_field_name,
        "untranslatedName": config.google_case_field_name,
        "custom": true,
        "orderable": true,
        "navigable": true,
        "searchable": true,
        "clauseNames": [cf(&config.google_case_field), config.google_case_field_name, format!("{}[Short text]", config.google_case_field_name)],
        "schema": {
            "type": "string",
            "custom": "com.atlassian.jira.plugin.system.customfieldtypes:textfield",
            "customId": custom_id(&config.google_case_field),
        },
    }));
    Json(Value::Array(fields))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_byte_ranges() {
        assert_eq!(parse_range("bytes=0-3", 10).unwrap(), (0, 3));
        assert_eq!(parse_range("bytes=5-", 10).unwrap(), (5, 9));
        assert_eq!(parse_range("bytes=-4", 10).unwrap(), (6, 9));
        assert_eq!(parse_range("bytes=8-100", 10).unwrap(), (8, 9));
        assert_eq!(
            parse_range("bytes=10-12", 10).unwrap_err().status,
            StatusCode::RANGE_NOT_SATISFIABLE
        );
        assert_eq!(
            parse_range("items=0-1", 10).unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            parse_range("bytes=4-2", 10).unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn guesses_mime_types() {
        assert_eq!(guess_mime("a.TXT"), "text/plain");
        assert_eq!(guess_mime("noext"), "application/octet-stream");
    }
}
