//! The few Jira Service Management (`/rest/servicedeskapi`) endpoints a connector may use
//! next to the platform API: the service desk lookup and request comments with their
//! public/internal flag. JSM has its own paging (`start`/`limit`/`isLastPage`), dates
//! (`DateDTO`) and error shape, reproduced here so a client meets them before production.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::JiraEmulator;
use crate::adf::{adf_to_text, text_to_adf};
use crate::errors::ApiError;
use crate::gate::{Caller, QueryParams};
use crate::model::{Comment, PROJECT_ID, PROJECT_NAME, jira_time, now_ms};
use crate::render::avatar_urls;
use crate::rest::json_object;
use crate::state::State as EmuState;

type ApiResult<T> = Result<T, ApiError>;

const DEFAULT_LIMIT: i64 = 50;

fn date_dto(t: DateTime<Utc>) -> Value {
    json!({
        "iso8601": t.format("%Y-%m-%dT%H:%M:%S+0000").to_string(),
        "jira": jira_time(t),
        "friendly": t.format("%d/%b/%y %-I:%M %p").to_string(),
        "epochMillis": t.timestamp_millis(),
    })
}

fn user_dto(state: &EmuState, account_id: &str, base: &str) -> Value {
    let user = state.user(account_id);
    json!({
        "accountId": account_id,
        "emailAddress": user.map(|u| u.email.as_str()).unwrap_or(""),
        "displayName": user.map(|u| u.display_name.as_str()).unwrap_or(account_id),
        "active": true,
        "timeZone": state.config.time_zone,
        "_links": {
            "jiraRest": format!("{base}/rest/api/2/user?accountId={account_id}"),
            "avatarUrls": avatar_urls(base, account_id),
            "self": format!("{base}/rest/api/2/user?accountId={account_id}"),
        },
    })
}

fn comment_dto(state: &EmuState, issue_id: u64, comment: &Comment, base: &str) -> Value {
    json!({
        "_expands": ["attachment", "renderedBody"],
        "id": comment.id.to_string(),
        "body": adf_to_text(&comment.body),
        "public": !comment.is_internal(),
        "author": user_dto(state, &comment.author, base),
        "created": date_dto(comment.created),
        "_links": {
            "self": format!("{base}/rest/servicedeskapi/request/{issue_id}/comment/{}", comment.id),
        },
    })
}

fn service_desk(state: &EmuState, base: &str) -> Value {
    let id = &state.config.service_desk_id;
    json!({
        "id": id,
        "projectId": PROJECT_ID,
        "projectName": PROJECT_NAME,
        "projectKey": state.config.project_key,
        "projectTypeKey": "service_desk",
        "_links": {"self": format!("{base}/rest/servicedeskapi/servicedesk/{id}")},
    })
}

fn paged(
    values: Vec<Value>,
    start: i64,
    limit: i64,
    total: usize,
    base: &str,
    path: &str,
) -> Value {
    let size = values.len();
    let start_usize = usize::try_from(start).unwrap_or(0);
    let is_last = start_usize + size >= total;
    let mut links = json!({
        "base": format!("{base}/rest/servicedeskapi"),
        "context": "",
        "self": format!("{base}{path}?start={start}&limit={limit}"),
    });
    if !is_last {
        links["next"] = json!(format!(
            "{base}{path}?start={}&limit={limit}",
            start_usize + size
        ));
    }
    if start > 0 {
        links["prev"] = json!(format!(
            "{base}{path}?start={}&limit={limit}",
            (start - limit).max(0)
        ));
    }
    json!({
        "_expands": [],
        "size": size,
        "start": start,
        "limit": limit,
        "isLastPage": is_last,
        "_links": links,
        "values": values,
    })
}

fn paging(query: &QueryParams) -> ApiResult<(i64, i64)> {
    let start = query.int("start")?.unwrap_or(0).max(0);
    let limit = query
        .int("limit")?
        .unwrap_or(DEFAULT_LIMIT)
        .clamp(1, DEFAULT_LIMIT);
    Ok((start, limit))
}

fn request_not_found(id: &str) -> ApiError {
    ApiError::jsm(
        StatusCode::NOT_FOUND,
        format!("The request '{id}' does not exist or you do not have permission to see it."),
        "sd.customer.request.not.found",
    )
}

pub(crate) async fn get_service_desks(
    State(emu): State<JiraEmulator>,
    Extension(caller): Extension<Caller>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let query = QueryParams::parse(raw.as_deref());
    let (start, limit) = paging(&query)?;
    let state = emu.lock();
    let all = [service_desk(&state, &caller.base_url)];
    let values: Vec<Value> = all
        .iter()
        .skip(usize::try_from(start).unwrap_or(0))
        .take(usize::try_from(limit).unwrap_or(0))
        .cloned()
        .collect();
    Ok(Json(paged(
        values,
        start,
        limit,
        all.len(),
        &caller.base_url,
        "/rest/servicedeskapi/servicedesk",
    )))
}

pub(crate) async fn get_service_desk(
    State(emu): State<JiraEmulator>,
    Extension(caller): Extension<Caller>,
    Path(service_desk_id): Path<String>,
) -> ApiResult<Json<Value>> {
    let state = emu.lock();
    if service_desk_id == state.config.service_desk_id
        || service_desk_id.eq_ignore_ascii_case(&state.config.project_key)
    {
        Ok(Json(service_desk(&state, &caller.base_url)))
    } else {
        Err(ApiError::jsm(
            StatusCode::NOT_FOUND,
            format!("Service desk with id '{service_desk_id}' does not exist."),
            "sd.servicedesk.error.not.found",
        ))
    }
}

pub(crate) async fn get_request_comments(
    State(emu): State<JiraEmulator>,
    Extension(caller): Extension<Caller>,
    Path(issue_id_or_key): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let query = QueryParams::parse(raw.as_deref());
    let (start, limit) = paging(&query)?;
    let public = query.bool("public", true);
    let internal = query.bool("internal", true);
    let state = emu.lock();
    let id = state
        .find_issue(&issue_id_or_key)
        .ok_or_else(|| request_not_found(&issue_id_or_key))?;
    let issue = state
        .issues
        .get(&id)
        .ok_or_else(|| request_not_found(&issue_id_or_key))?;
    let mut comments: Vec<&Comment> = issue
        .comments
        .iter()
        .filter(|c| if c.is_internal() { internal } else { public })
        .collect();
    comments.sort_by_key(|c| (c.created, c.id));
    let total = comments.len();
    let values: Vec<Value> = comments
        .into_iter()
        .skip(usize::try_from(start).unwrap_or(0))
        .take(usize::try_from(limit).unwrap_or(0))
        .map(|c| comment_dto(&state, id, c, &caller.base_url))
        .collect();
    let path = format!("/rest/servicedeskapi/request/{id}/comment");
    Ok(Json(paged(
        values,
        start,
        limit,
        total,
        &caller.base_url,
        &path,
    )))
}

pub(crate) async fn create_request_comment(
    State(emu): State<JiraEmulator>,
    Extension(caller): Extension<Caller>,
    Path(issue_id_or_key): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let body = json_object(&headers, &body)?;
    let text = body
        .get("body")
        .and_then(Value::as_str)
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| {
            ApiError::jsm(
                StatusCode::BAD_REQUEST,
                "The comment body must not be empty.",
                "sd.comment.body.empty",
            )
        })?
        .to_string();
    let public = body.get("public").and_then(Value::as_bool).ok_or_else(|| {
        ApiError::jsm(
            StatusCode::BAD_REQUEST,
            "The 'public' flag of the comment is required.",
            "sd.comment.public.required",
        )
    })?;
    let mut state = emu.lock();
    let id = state
        .find_issue(&issue_id_or_key)
        .ok_or_else(|| request_not_found(&issue_id_or_key))?;
    let mut properties = std::collections::BTreeMap::new();
    properties.insert(
        "sd.public.comment".to_string(),
        json!({"internal": !public}),
    );
    let comment_id = state
        .add_comment(
            id,
            &caller.account_id,
            text_to_adf(&text),
            properties,
            None,
            now_ms(),
        )
        .ok_or_else(|| request_not_found(&issue_id_or_key))?;
    let issue = state
        .issues
        .get(&id)
        .ok_or_else(|| request_not_found(&issue_id_or_key))?;
    let comment = issue
        .comments
        .iter()
        .find(|c| c.id == comment_id)
        .ok_or_else(|| request_not_found(&issue_id_or_key))?;
    Ok((
        StatusCode::CREATED,
        Json(comment_dto(&state, id, comment, &caller.base_url)),
    ))
}
