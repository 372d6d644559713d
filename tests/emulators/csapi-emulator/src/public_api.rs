//! The public Cloud Support API v2 surface (`/v2/...`, `/upload/v2/...`).
//!
//! Google's REST paths carry custom verbs after a colon (`cases/1:close`,
//! `cases:search`) and names with a variable number of segments, which axum's router
//! cannot express, so one handler routes by hand, exactly along the discovery
//! document's bindings. Every request is logged and counted before anything else,
//! then latency and injected faults apply, then the standard and per-method query
//! parameters are checked (unknown ones are a 400, as at Google; so is a page token
//! that the raw query string carries without percent-encoding), then the method runs.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Query, State as AxumState};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::Emulator;
use crate::errors::ApiError;
use crate::faults::FaultKind;
use crate::media::{essence, parse_multipart};
use crate::model::{CLASSIFICATIONS, CaseState, EnumEncoding, Priority, guess_mime};
use crate::pagination::{SortKey, page_size, paginate};
use crate::query::{self, CaseView, Dialect};
use crate::store::{NewCase, RecordedRequest, State, is_valid_parent};
use crate::wire::{self, enum_field, str_field};

/// A request routed to one discovery method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    ClassificationsSearch,
    CasesList { parent: String },
    CasesSearch { parent: String },
    CasesCreate { parent: String },
    CasesGet { name: String },
    CasesPatch { name: String },
    CasesClose { name: String },
    CasesEscalate { name: String },
    CommentsList { case: String },
    CommentsCreate { case: String },
    CommentsGet { name: String },
    AttachmentsList { case: String },
    AttachmentsGet { name: String },
    MediaUpload { case: String, upload_path: bool },
    MediaDownload { name: String },
}

impl Route {
    pub fn method_id(&self) -> &'static str {
        match self {
            Route::ClassificationsSearch => "caseClassifications.search",
            Route::CasesList { .. } => "cases.list",
            Route::CasesSearch { .. } => "cases.search",
            Route::CasesCreate { .. } => "cases.create",
            Route::CasesGet { .. } => "cases.get",
            Route::CasesPatch { .. } => "cases.patch",
            Route::CasesClose { .. } => "cases.close",
            Route::CasesEscalate { .. } => "cases.escalate",
            Route::CommentsList { .. } => "cases.comments.list",
            Route::CommentsCreate { .. } => "cases.comments.create",
            Route::CommentsGet { .. } => "cases.comments.get",
            Route::AttachmentsList { .. } => "cases.attachments.list",
            Route::AttachmentsGet { .. } => "cases.attachments.get",
            Route::MediaUpload { .. } => "media.upload",
            Route::MediaDownload { .. } => "media.download",
        }
    }

    /// The method's own query parameters (lowerCamelCase; snake_case is mapped).
    fn params(&self) -> &'static [&'static str] {
        match self {
            Route::ClassificationsSearch | Route::CasesSearch { .. } => {
                &["query", "pageSize", "pageToken"]
            }
            Route::CasesList { .. } => &["filter", "pageSize", "pageToken"],
            Route::CommentsList { .. } | Route::AttachmentsList { .. } => {
                &["pageSize", "pageToken"]
            }
            Route::CasesPatch { .. } => &["updateMask"],
            Route::MediaUpload { .. } => &["attachment.filename"],
            _ => &[],
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Prefix {
    Plain,
    Upload,
    Download,
}

/// Maps a percent-decoded path and method to a discovery method.
pub fn resolve(method: &Method, path: &str) -> Option<Route> {
    let (prefix, rest) = if let Some(r) = path.strip_prefix("/upload/v2/") {
        (Prefix::Upload, r)
    } else if let Some(r) = path.strip_prefix("/download/v2/") {
        (Prefix::Download, r)
    } else if let Some(r) = path.strip_prefix("/v2/") {
        (Prefix::Plain, r)
    } else {
        return None;
    };
    if rest == "caseClassifications:search" {
        return (prefix == Prefix::Plain && method == Method::GET)
            .then_some(Route::ClassificationsSearch);
    }
    let segs: Vec<&str> = rest.split('/').collect();
    if segs.len() < 3 || segs.iter().any(|s| s.is_empty()) {
        return None;
    }
    let parent = format!("{}/{}", segs[0], segs[1]);
    if !is_valid_parent(&parent) {
        return None;
    }
    let case = |id: &str| format!("{parent}/cases/{id}");
    let (get, post, patch) = (
        method == Method::GET,
        method == Method::POST,
        method == Method::PATCH,
    );
    let plain = prefix == Prefix::Plain;
    Some(match &segs[2..] {
        ["cases"] if plain && get => Route::CasesList { parent },
        ["cases"] if plain && post => Route::CasesCreate { parent },
        ["cases:search"] if plain && get => Route::CasesSearch { parent },
        ["cases", id] if plain => match id.split_once(':') {
            None if get => Route::CasesGet { name: case(id) },
            None if patch => Route::CasesPatch { name: case(id) },
            Some((id, "close")) if post => Route::CasesClose { name: case(id) },
            Some((id, "escalate")) if post => Route::CasesEscalate { name: case(id) },
            _ => return None,
        },
        ["cases", id, "comments"] if plain && get => Route::CommentsList { case: case(id) },
        ["cases", id, "comments"] if plain && post => Route::CommentsCreate { case: case(id) },
        ["cases", id, "comments", c] if plain && get => Route::CommentsGet {
            name: format!("{}/comments/{c}", case(id)),
        },
        ["cases", id, "attachments"] if plain && get => Route::AttachmentsList { case: case(id) },
        ["cases", id, "attachments"] if post && prefix != Prefix::Download => Route::MediaUpload {
            case: case(id),
            upload_path: prefix == Prefix::Upload,
        },
        ["cases", id, "attachments", a] if get && prefix != Prefix::Upload => {
            match a.strip_suffix(":download") {
                Some(a) => Route::MediaDownload {
                    name: format!("{}/attachments/{a}", case(id)),
                },
                None if plain => Route::AttachmentsGet {
                    name: format!("{}/attachments/{a}", case(id)),
                },
                None => return None,
            }
        }
        _ => return None,
    })
}

/// Google's standard ("system") parameters, accepted on every method.
const STANDARD_PARAMS: &[&str] = &[
    "$.xgafv",
    "access_token",
    "alt",
    "callback",
    "fields",
    "key",
    "oauth_token",
    "prettyPrint",
    "quotaUser",
    "uploadType",
    "upload_protocol",
];

/// Checked query parameters of one request.
struct Params {
    values: BTreeMap<String, String>,
    enc: EnumEncoding,
    pretty: bool,
    alt_media: bool,
}

impl Params {
    fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// A parameter where "" means unset (the Rust crate sends empty values).
    fn non_empty(&self, key: &str) -> Option<&str> {
        self.get(key).filter(|v| !v.is_empty())
    }
}

fn snake_to_camel(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut upper = false;
    for c in s.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

fn check_params(pairs: Vec<(String, String)>, route: &Route) -> Result<Params, ApiError> {
    let mut values = BTreeMap::new();
    for (key, value) in pairs {
        let name = if STANDARD_PARAMS.contains(&key.as_str()) {
            key
        } else if let Some(stripped) = key.strip_prefix('$')
            && STANDARD_PARAMS.contains(&stripped)
        {
            stripped.to_string()
        } else {
            let camel = snake_to_camel(&key);
            if route.params().contains(&camel.as_str()) {
                camel
            } else {
                return Err(ApiError::bad_field(
                    key.clone(),
                    format!(
                        "Invalid JSON payload received. Unknown name \"{key}\": Cannot bind query parameter. Field '{key}' could not be found in request message."
                    ),
                ));
            }
        };
        values.insert(name, value);
    }
    let mut enc = EnumEncoding::Names;
    let mut alt_media = false;
    if let Some(alt) = values.get("alt") {
        let mut it = alt.split(';');
        match it.next().unwrap_or("").trim() {
            "" | "json" => {}
            "media" => alt_media = true,
            other => {
                return Err(ApiError::bad_field(
                    "alt",
                    format!(
                        "Unsupported alt value \"{other}\": this emulator speaks json and media."
                    ),
                ));
            }
        }
        for opt in it {
            match opt.trim() {
                "enum-encoding=int" => enc = EnumEncoding::Ints,
                "enum-encoding=string" | "" => {}
                other => {
                    return Err(ApiError::bad_field(
                        "alt",
                        format!("Unsupported alt option \"{other}\"."),
                    ));
                }
            }
        }
    }
    if let Some(x) = values.get("$.xgafv")
        && x != "1"
        && x != "2"
    {
        return Err(ApiError::bad_field(
            "$.xgafv",
            format!("Invalid value at '$.xgafv' (enum), \"{x}\""),
        ));
    }
    let pretty = match values.get("prettyPrint").map(String::as_str) {
        None | Some("true") | Some("1") => true,
        Some("false") | Some("0") => false,
        Some(other) => {
            return Err(ApiError::bad_field(
                "prettyPrint",
                format!("Invalid value at 'pretty_print' (TYPE_BOOL), \"{other}\""),
            ));
        }
    };
    Ok(Params {
        values,
        enc,
        pretty,
        alt_media,
    })
}

/// A page token must reach the query string percent-encoded. Form decoding would
/// quietly turn a raw `+` into a space and read a raw `=` or `/` as itself, so a client
/// that builds a URL by hand could work here by luck and fail at Google: the raw query
/// is checked before it is decoded, and only unreserved characters and `%XX` escapes
/// may make up the token's value.
fn check_page_token_encoding(raw_query: &str) -> Result<(), ApiError> {
    for pair in raw_query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if snake_to_camel(&percent_decode(key)) != "pageToken" {
            continue;
        }
        let bytes = value.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            if b == b'%'
                && bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit)
            {
                i += 3;
                continue;
            }
            if !(b.is_ascii_alphanumeric() || b"-._~*".contains(&b)) {
                return Err(ApiError::bad_field(
                    "page_token",
                    format!(
                        "Invalid page token: the query string carries '{}' unencoded; \
                         percent-encode the token (e.g. '+' as %2B, '/' as %2F, '=' as %3D).",
                        char::from(b)
                    ),
                ));
            }
            i += 1;
        }
    }
    Ok(())
}

fn json_response(status: StatusCode, v: &Value, pretty: bool) -> Response {
    let body = if pretty {
        serde_json::to_vec_pretty(v)
    } else {
        serde_json::to_vec(v)
    }
    .unwrap_or_default();
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    resp
}

/// Percent-decodes a URL path (the Rust crate and curl may encode `:` as `%3A`).
fn percent_decode(s: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// How many requests the request log keeps (the oldest tenth is dropped beyond it).
const MAX_LOGGED_REQUESTS: usize = 100_000;

/// The single entry point of the public API.
pub async fn handle(
    AxumState(emu): AxumState<Emulator>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = percent_decode(uri.path());
    if path.starts_with("/_control") {
        // An unknown control route is a test bug, not a public request to record.
        return ApiError::not_found(format!("No control route {method} {path}.")).into_response();
    }
    let route = resolve(&method, &path);
    let latency = {
        let mut st = emu.lock();
        // Bound the log so a long-running sandbox does not grow without limit.
        if st.requests.len() >= MAX_LOGGED_REQUESTS {
            st.requests.drain(..MAX_LOGGED_REQUESTS / 10);
        }
        st.requests.push(RecordedRequest {
            method: method.to_string(),
            path: path.clone(),
            query: uri.query().unwrap_or("").to_string(),
            body: serde_json::from_slice(&body).ok(),
            api_method: route.as_ref().map(|r| r.method_id().to_string()),
        });
        if let Some(r) = &route {
            *st.counters.entry(r.method_id().to_string()).or_insert(0) += 1;
        }
        st.faults.latency
    };
    tracing::debug!(%method, %path, api_method = route.as_ref().map(Route::method_id), "public request");
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let Some(route) = route else {
        return ApiError::not_found(format!(
            "The requested URL {path} was not found on this server (method {method})."
        ))
        .into_response();
    };
    let fault = emu.lock().faults.take(route.method_id());
    if let Some(FaultKind::Fail { status }) = fault {
        return ApiError::with_code(
            status,
            format!("Injected fault: {} answers {status}.", route.method_id()),
        )
        .into_response();
    }
    let result = {
        let mut st = emu.lock();
        dispatch(&mut st, &route, &uri, &headers, body)
    };
    if fault == Some(FaultKind::LostReply) {
        return ApiError::unavailable(format!(
            "Injected lost reply: {} was performed but its reply was dropped.",
            route.method_id()
        ))
        .into_response();
    }
    result.unwrap_or_else(IntoResponse::into_response)
}

fn dispatch(
    st: &mut State,
    route: &Route,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    check_page_token_encoding(uri.query().unwrap_or(""))?;
    let pairs = Query::<Vec<(String, String)>>::try_from_uri(uri)
        .map_err(|e| ApiError::invalid_argument(format!("Malformed query string: {e}")))?
        .0;
    let p = check_params(pairs, route)?;
    let ok = |v: Value| Ok(json_response(StatusCode::OK, &v, p.pretty));
    match route {
        Route::ClassificationsSearch => ok(search_classifications(&p)?),
        Route::CasesGet { name } => {
            let case = st.case_by_name(name)?;
            ok(case.to_json(&case.current, p.enc))
        }
        Route::CasesList { parent } => ok(list_cases(st, parent, &p)?),
        Route::CasesSearch { parent } => ok(search_cases(st, parent, &p)?),
        Route::CasesCreate { parent } => ok(create_case(st, parent, &body, p.enc)?),
        Route::CasesPatch { name } => ok(patch_case(st, name, &body, &p)?),
        Route::CasesClose { name } => ok(close_case(st, name, &body, p.enc)?),
        Route::CasesEscalate { name } => ok(escalate_case(st, name, &body, p.enc)?),
        Route::CommentsList { case } => ok(list_comments(st, case, &p)?),
        Route::CommentsCreate { case } => ok(create_comment(st, case, &body)?),
        Route::CommentsGet { name } => ok(get_comment(st, name)?),
        Route::AttachmentsList { case } => ok(list_attachments(st, case, &p)?),
        Route::AttachmentsGet { name } => {
            let (case, att) = find_attachment(st, name)?;
            ok(case.attachment_json(att))
        }
        Route::MediaUpload { case, upload_path } => {
            ok(upload(st, case, *upload_path, headers, body, &p)?)
        }
        Route::MediaDownload { name } => download(st, name, &p),
    }
}

fn page_of<T>(
    items: Vec<(SortKey, T)>,
    p: &Params,
    scope: &str,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    let size = page_size(p.non_empty("pageSize"))?;
    paginate(items, size, p.non_empty("pageToken"), scope)
}

fn list_body(key: &str, items: Vec<Value>, next: Option<String>) -> Value {
    let mut m = Map::new();
    // proto3 JSON omits empty repeated fields.
    if !items.is_empty() {
        m.insert(key.into(), Value::Array(items));
    }
    if let Some(t) = next {
        m.insert("nextPageToken".into(), json!(t));
    }
    Value::Object(m)
}

fn search_classifications(p: &Params) -> Result<Value, ApiError> {
    let q = p.non_empty("query").unwrap_or("");
    let terms = query::classification_matcher(q)
        .map_err(|e| ApiError::bad_field("query", format!("Invalid query \"{q}\": {e}.")))?;
    let n = CLASSIFICATIONS.len() as u64;
    let items: Vec<(SortKey, Value)> = CLASSIFICATIONS
        .iter()
        .enumerate()
        .filter(|(_, (id, name))| {
            terms.iter().all(|term| {
                let subject = if term.field == "id" { id } else { name };
                if term.wildcard {
                    query::glob_match(&term.value, subject)
                } else {
                    term.value == *subject
                }
            })
        })
        .map(|(i, (id, name))| ((0, n - i as u64), json!({"id": id, "displayName": name})))
        .collect();
    let (page, next) = page_of(items, p, &format!("caseClassifications.search|{q}"))?;
    Ok(list_body("caseClassifications", page, next))
}

fn parse_query(q: &str, dialect: Dialect, field: &str) -> Result<Option<query::Expr>, ApiError> {
    query::parse(q, dialect)
        .map_err(|e| ApiError::bad_field(field, format!("Invalid {field} \"{q}\": {e}.")))
}

fn list_cases(st: &State, parent: &str, p: &Params) -> Result<Value, ApiError> {
    let filter = p.non_empty("filter").unwrap_or("");
    let expr = parse_query(filter, Dialect::ListFilter, "filter")?;
    let mut items: Vec<(SortKey, Value)> = st
        .cases
        .values()
        .filter(|c| st.in_scope(&c.parent, parent, false))
        .filter(|c| {
            expr.as_ref().is_none_or(|e| {
                e.matches(&CaseView {
                    version: &c.current,
                    creator_email: c.creator.email.as_deref(),
                    comments: &c.comments,
                })
            })
        })
        .map(|c| {
            (
                (c.current.update_time.timestamp_micros(), c.number),
                c.to_json(&c.current, p.enc),
            )
        })
        .collect();
    items.sort_by_key(|item| std::cmp::Reverse(item.0));
    let (page, next) = page_of(items, p, &format!("cases.list|{parent}|{filter}"))?;
    Ok(list_body("cases", page, next))
}

fn search_cases(st: &State, parent: &str, p: &Params) -> Result<Value, ApiError> {
    let q = p.non_empty("query").unwrap_or("");
    let expr = parse_query(q, Dialect::Search, "query")?;
    let lag = st.faults.search_lag;
    let cutoff = if lag.is_zero() {
        None
    } else {
        chrono::Duration::from_std(lag)
            .ok()
            .and_then(|l| chrono::Utc::now().checked_sub_signed(l))
    };
    let mut items: Vec<(SortKey, Value)> = st
        .cases
        .values()
        .filter(|c| st.in_scope(&c.parent, parent, true))
        .filter_map(|c| {
            let version = match cutoff {
                None => &c.current,
                Some(t) => c.history.iter().rev().find(|v| v.update_time <= t)?,
            };
            let view = CaseView {
                version,
                creator_email: c.creator.email.as_deref(),
                comments: &c.comments,
            };
            if expr.as_ref().is_some_and(|e| !e.matches(&view)) {
                return None;
            }
            Some((
                (version.update_time.timestamp_micros(), c.number),
                c.to_json(version, p.enc),
            ))
        })
        .collect();
    items.sort_by_key(|item| std::cmp::Reverse(item.0));
    let (page, next) = page_of(items, p, &format!("cases.search|{parent}|{q}"))?;
    Ok(list_body("cases", page, next))
}

fn required(field: &str, what: &str) -> ApiError {
    ApiError::bad_field(field, format!("{what} is required."))
}

fn create_case(
    st: &mut State,
    parent: &str,
    body: &[u8],
    enc: EnumEncoding,
) -> Result<Value, ApiError> {
    let raw = wire::parse_json(body)?;
    let m = wire::decode(&raw, wire::CASE, "case")?;
    let display_name = str_field(&m, "displayName");
    if display_name.trim().is_empty() {
        return Err(required("case.display_name", "Case display_name"));
    }
    let description = str_field(&m, "description");
    if description.trim().is_empty() {
        return Err(required("case.description", "Case description"));
    }
    let classification_id = m
        .get("classification")
        .and_then(Value::as_object)
        .map(|c| str_field(c, "id"))
        .unwrap_or("");
    if classification_id.is_empty() {
        return Err(required("case.classification.id", "Case classification.id"));
    }
    let priority =
        Priority::from_index(enum_field(&m, "priority")).unwrap_or(Priority::Unspecified);
    if priority == Priority::Unspecified {
        return Err(required("case.priority", "Case priority (P0..P4)"));
    }
    if !str_field(&m, "contactEmail").is_empty() {
        return Err(ApiError::bad_field(
            "case.contact_email",
            "contact_email must not be set unless the request is authenticated through Workforce Identity Federation.",
        ));
    }
    let subscribers = string_list(&m, "subscriberEmailAddresses");
    let new = NewCase {
        parent: parent.to_string(),
        display_name: display_name.to_string(),
        description: description.to_string(),
        priority,
        classification_id: classification_id.to_string(),
        creator: st.caller(),
        create_time: None,
        time_zone: Some(str_field(&m, "timeZone").to_string()).filter(|s| !s.is_empty()),
        subscriber_email_addresses: subscribers,
        test_case: m.get("testCase").and_then(Value::as_bool).unwrap_or(false),
        language_code: Some(str_field(&m, "languageCode").to_string()),
        contact_email: None,
    };
    let number = st.create_case(new)?;
    let case = st.case_by_name(&number.to_string())?;
    Ok(case.to_json(&case.current, enc))
}

fn string_list(m: &Map<String, Value>, key: &str) -> Vec<String> {
    m.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

const MUTABLE_PATHS: &[&str] = &["priority", "display_name", "subscriber_email_addresses"];

/// Maps an `updateMask` path (camelCase or snake_case) to its proto name.
fn mask_path(path: &str) -> Result<&'static str, ApiError> {
    let field = wire::CASE
        .iter()
        .find(|f| f.json == path || f.proto == path)
        .map(|f| f.proto);
    match field {
        Some(proto) if MUTABLE_PATHS.contains(&proto) => Ok(proto),
        Some(proto) => Err(ApiError::bad_field(
            "update_mask",
            format!(
                "Invalid update_mask path \"{path}\": field \"{proto}\" cannot be updated; updatable fields are priority, display_name and subscriber_email_addresses."
            ),
        )),
        None => Err(ApiError::bad_field(
            "update_mask",
            format!("Invalid update_mask path \"{path}\": Case has no such field."),
        )),
    }
}

fn patch_case(st: &mut State, name: &str, body: &[u8], p: &Params) -> Result<Value, ApiError> {
    let raw = wire::parse_json(body)?;
    let m = wire::decode(&raw, wire::CASE, "case")?;
    let mask = p.non_empty("updateMask").unwrap_or("");
    let mut paths = Vec::new();
    for path in mask.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if path == "*" {
            paths.extend_from_slice(MUTABLE_PATHS);
        } else {
            paths.push(mask_path(path)?);
        }
    }
    if paths.is_empty() {
        // An empty mask updates every supported field (documented).
        paths.extend_from_slice(MUTABLE_PATHS);
    }
    let number = st.number_by_name(name)?;
    let mut display_name = None;
    let mut priority = None;
    let mut subscribers = None;
    for path in paths {
        match path {
            "display_name" => {
                let v = str_field(&m, "displayName");
                if v.trim().is_empty() {
                    return Err(required("case.display_name", "Case display_name"));
                }
                display_name = Some(v.to_string());
            }
            "priority" => match Priority::from_index(enum_field(&m, "priority")) {
                Some(Priority::Unspecified) | None => {
                    return Err(required("case.priority", "Case priority (P0..P4)"));
                }
                Some(pr) => priority = Some(pr),
            },
            _ => subscribers = Some(string_list(&m, "subscriberEmailAddresses")),
        }
    }
    st.write(number, |case, _| {
        if let Some(v) = display_name {
            case.current.display_name = v;
        }
        if let Some(v) = priority {
            case.current.priority = v;
        }
        if let Some(v) = subscribers {
            case.current.subscriber_email_addresses = v;
        }
    })?;
    let case = st.case_by_name(name)?;
    Ok(case.to_json(&case.current, p.enc))
}

fn close_case(
    st: &mut State,
    name: &str,
    body: &[u8],
    enc: EnumEncoding,
) -> Result<Value, ApiError> {
    let raw = wire::parse_json(body)?;
    wire::decode(&raw, wire::CLOSE_CASE_REQUEST, "")?;
    let number = st.number_by_name(name)?;
    // Closing a closed case is a no-op that answers the case (the documentation says
    // nothing; idempotence lets a client retry a close whose reply was lost).
    if !st.case_by_name(name)?.current.state.is_closed() {
        st.set_state(number, CaseState::Closed)?;
    }
    let case = st.case_by_name(name)?;
    Ok(case.to_json(&case.current, enc))
}

fn escalate_case(
    st: &mut State,
    name: &str,
    body: &[u8],
    enc: EnumEncoding,
) -> Result<Value, ApiError> {
    let raw = wire::parse_json(body)?;
    let m = wire::decode(&raw, wire::ESCALATE_CASE_REQUEST, "")?;
    let esc = m.get("escalation").and_then(Value::as_object);
    let reason = esc.map(|e| enum_field(e, "reason")).unwrap_or(0);
    if reason == 0 {
        return Err(required("escalation.reason", "Escalation reason"));
    }
    if esc
        .map(|e| str_field(e, "justification"))
        .unwrap_or("")
        .trim()
        .is_empty()
    {
        return Err(required(
            "escalation.justification",
            "Escalation justification",
        ));
    }
    let number = st.number_by_name(name)?;
    if st.case_by_name(name)?.current.state.is_closed() {
        return Err(ApiError::failed_precondition(format!(
            "Case \"{name}\" is closed and cannot be escalated."
        )));
    }
    st.write(number, |case, _| case.current.escalated = true)?;
    let case = st.case_by_name(name)?;
    Ok(case.to_json(&case.current, enc))
}

fn list_comments(st: &State, name: &str, p: &Params) -> Result<Value, ApiError> {
    let case = st.case_by_name(name)?;
    // Newest first, as observed on the real API (the order is undocumented).
    let mut items: Vec<(SortKey, Value)> = case
        .comments
        .iter()
        .map(|c| {
            (
                (c.create_time.timestamp_micros(), c.id),
                case.comment_json(c),
            )
        })
        .collect();
    items.sort_by_key(|item| std::cmp::Reverse(item.0));
    let (page, next) = page_of(items, p, &format!("cases.comments.list|{}", case.number))?;
    Ok(list_body("comments", page, next))
}

fn create_comment(st: &mut State, name: &str, body: &[u8]) -> Result<Value, ApiError> {
    let raw = wire::parse_json(body)?;
    let m = wire::decode(&raw, wire::COMMENT, "comment")?;
    let text = str_field(&m, "body");
    let number = st.number_by_name(name)?;
    let id = st.add_comment(number, text, st.caller())?;
    let case = st.case_by_name(name)?;
    let comment = case
        .comments
        .iter()
        .find(|c| c.id == id)
        .ok_or_else(|| ApiError::with_code(500, "comment vanished after create"))?;
    Ok(case.comment_json(comment))
}

fn get_comment(st: &State, name: &str) -> Result<Value, ApiError> {
    let not_found = || ApiError::not_found(format!("Comment \"{name}\" was not found."));
    let (case_name, id) = name.rsplit_once("/comments/").ok_or_else(not_found)?;
    let case = st.case_by_name(case_name).map_err(|_| not_found())?;
    let id: u64 = id.parse().map_err(|_| not_found())?;
    let c = case
        .comments
        .iter()
        .find(|c| c.id == id)
        .ok_or_else(not_found)?;
    Ok(case.comment_json(c))
}

fn list_attachments(st: &State, name: &str, p: &Params) -> Result<Value, ApiError> {
    let case = st.case_by_name(name)?;
    let mut items: Vec<(SortKey, Value)> = case
        .attachments
        .iter()
        .map(|a| {
            (
                (a.create_time.timestamp_micros(), a.seq),
                case.attachment_json(a),
            )
        })
        .collect();
    items.sort_by_key(|item| std::cmp::Reverse(item.0));
    let (page, next) = page_of(items, p, &format!("cases.attachments.list|{}", case.number))?;
    Ok(list_body("attachments", page, next))
}

/// An attachment by name under any parent of its case.
pub fn find_attachment<'a>(
    st: &'a State,
    name: &str,
) -> Result<
    (
        &'a crate::model::CaseRecord,
        &'a crate::model::AttachmentRecord,
    ),
    ApiError,
> {
    let not_found = || ApiError::not_found(format!("Attachment \"{name}\" was not found."));
    let (case_name, id) = name.rsplit_once("/attachments/").ok_or_else(not_found)?;
    let case = st.case_by_name(case_name).map_err(|_| not_found())?;
    let att = case
        .attachments
        .iter()
        .find(|a| a.id == id)
        .ok_or_else(not_found)?;
    Ok((case, att))
}

fn upload(
    st: &mut State,
    case_name: &str,
    upload_path: bool,
    headers: &HeaderMap,
    body: Bytes,
    p: &Params,
) -> Result<Value, ApiError> {
    if !upload_path {
        return Err(ApiError::invalid_argument(
            "Upload requests must include an uploadType URL parameter and a URL path beginning with /upload/",
        ));
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let mut filename = p.non_empty("attachment.filename").map(str::to_string);
    let upload_type = p
        .non_empty("uploadType")
        .or_else(|| p.non_empty("upload_protocol"))
        .unwrap_or("media");
    let (data, mime) = match upload_type {
        "multipart" => {
            let parts = parse_multipart(&content_type, &body).map_err(|e| {
                ApiError::invalid_argument(format!("Malformed multipart upload: {e}."))
            })?;
            let meta_idx = parts.iter().position(|part| {
                part.content_type().as_deref() == Some("application/json")
                    || part.disposition_param("name").as_deref() == Some("metadata")
            });
            if let Some(i) = meta_idx {
                let raw = wire::parse_json(&parts[i].body)?;
                let attachment = if raw.get("attachment").is_some() {
                    let req = wire::decode(&raw, wire::CREATE_ATTACHMENT_REQUEST, "")?;
                    req.get("attachment")
                        .and_then(Value::as_object)
                        .cloned()
                        .unwrap_or_default()
                } else {
                    wire::decode(&raw, wire::ATTACHMENT, "attachment")?
                };
                let f = str_field(&attachment, "filename");
                if !f.is_empty() {
                    filename = Some(f.to_string());
                }
            }
            let media = parts
                .iter()
                .enumerate()
                .find(|(i, _)| Some(*i) != meta_idx)
                .map(|(_, part)| part)
                .ok_or_else(|| ApiError::invalid_argument("Multipart upload has no media part."))?;
            if filename.is_none() {
                filename = media.disposition_param("filename");
            }
            (media.body.clone(), media.content_type())
        }
        "media" | "raw" => {
            let ct = essence(&content_type);
            let ct = match ct.as_str() {
                // curl --data-binary sends a form type; Google sniffs instead.
                "" | "application/x-www-form-urlencoded" => None,
                _ => headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .map(|v| v.trim().to_string()),
            };
            (body, ct)
        }
        "resumable" => {
            return Err(ApiError::bad_field(
                "uploadType",
                "Resumable uploads are not supported by this method (the discovery document lists only simple and multipart).",
            ));
        }
        other => {
            return Err(ApiError::bad_field(
                "uploadType",
                format!("Invalid uploadType \"{other}\"."),
            ));
        }
    };
    let filename = filename
        .filter(|f| !f.is_empty())
        .ok_or_else(|| required("attachment.filename", "Attachment filename"))?;
    let mime = mime
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| guess_mime(&filename).to_string());
    let number = st.number_by_name(case_name)?;
    let id = st.add_attachment(number, &filename, &mime, data, st.caller())?;
    let case = st.case_by_name(case_name)?;
    let att = case
        .attachments
        .iter()
        .find(|a| a.id == id)
        .ok_or_else(|| ApiError::with_code(500, "attachment vanished after upload"))?;
    Ok(case.attachment_json(att))
}

fn download(st: &State, name: &str, p: &Params) -> Result<Response, ApiError> {
    let (_, att) = find_attachment(st, name)?;
    if !p.alt_media {
        // Without alt=media Google answers the `Media` resource, not the bytes.
        let v = json!({
            "filename": att.filename,
            "contentType": att.mime_type,
            "length": att.data.len().to_string(),
            "referenceType": "GET_MEDIA",
        });
        return Ok(json_response(StatusCode::OK, &v, p.pretty));
    }
    let mut resp = (StatusCode::OK, att.data.clone()).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&att.mime_type)
            .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream")),
    );
    let disposition = format!(
        "attachment; filename=\"{}\"",
        att.filename.replace(['"', '\\', '\r', '\n'], "_")
    );
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_follow_the_discovery_bindings() {
        let r = |m: Method, p: &str| resolve(&m, p).map(|r| r.method_id());
        assert_eq!(r(Method::GET, "/v2/projects/p/cases/1"), Some("cases.get"));
        assert_eq!(
            r(Method::GET, "/v2/organizations/1/cases/1"),
            Some("cases.get")
        );
        assert_eq!(
            r(Method::PATCH, "/v2/projects/p/cases/1"),
            Some("cases.patch")
        );
        assert_eq!(
            r(Method::POST, "/v2/projects/p/cases/1:close"),
            Some("cases.close")
        );
        assert_eq!(
            r(Method::GET, "/v2/projects/p/cases:search"),
            Some("cases.search")
        );
        assert_eq!(r(Method::GET, "/v2/projects/p/cases"), Some("cases.list"));
        assert_eq!(
            r(Method::POST, "/v2/projects/p/cases"),
            Some("cases.create")
        );
        assert_eq!(
            r(Method::POST, "/v2/projects/p/cases/1/comments"),
            Some("cases.comments.create")
        );
        assert_eq!(
            r(Method::POST, "/upload/v2/projects/p/cases/1/attachments"),
            Some("media.upload")
        );
        assert_eq!(
            r(Method::GET, "/v2/projects/p/cases/1/attachments/a:download"),
            Some("media.download")
        );
        assert_eq!(
            r(Method::GET, "/v2/caseClassifications:search"),
            Some("caseClassifications.search")
        );
        assert_eq!(r(Method::GET, "/v2/folders/1/cases/1"), None);
        assert_eq!(r(Method::DELETE, "/v2/projects/p/cases/1"), None);
        assert_eq!(r(Method::POST, "/v2/projects/p/cases/1:reopen"), None);
        assert_eq!(r(Method::GET, "/v2/projects//cases/1"), None);
    }

    #[test]
    fn page_tokens_must_be_percent_encoded_in_the_raw_query() {
        for ok in [
            "",
            "pageToken=",
            "pageSize=10&pageToken=%2B%2B%2F%2Fabc%3D%3D",
            "page_token=abc-._~*",
            "query=a+b%3D&pageToken=abc",
        ] {
            assert!(check_page_token_encoding(ok).is_ok(), "{ok}");
        }
        for bad in [
            "pageToken=++++////abc==",
            "pageToken=abc%3D=",
            "pageSize=10&page_token=a/b",
            "pageToken=a+b",
            "pageToken=a%2",
            "pageToken=a%zz",
        ] {
            let e = check_page_token_encoding(bad).unwrap_err();
            assert_eq!((e.code, e.status), (400, "INVALID_ARGUMENT"), "{bad}");
        }
    }

    #[test]
    fn paths_are_percent_decoded() {
        assert_eq!(
            percent_decode("/v2/projects/p/cases/1%3Aclose"),
            "/v2/projects/p/cases/1:close"
        );
        assert_eq!(percent_decode("/a%2"), "/a%2");
    }
}
