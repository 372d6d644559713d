//! Page sizes and opaque page tokens shared by every list/search method.
//!
//! Tokens are keyset cursors (the sort key of the last item returned), so items
//! added while a client pages (a new comment, a case that was just updated) move to
//! the front instead of shifting offsets: older items are neither skipped nor
//! repeated. A token is bound to the method, parent and query that produced it; a
//! token that does not decode, or belongs to another request, is a 400 like Google's.
//!
//! Tokens are standard base64 and always contain `+`, `/` and `=`, which a URL query
//! must carry percent-encoded: a client that pastes a token into a URL by hand breaks
//! here, and `public_api` rejects the raw form outright (Google's tokens are opaque and
//! may contain the same characters).

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::errors::ApiError;

/// Items are ordered by this key, descending (newest first).
pub type SortKey = (i64, u64);

/// Bytes every token starts with: standard base64 encodes them as `++++////`.
const MAGIC: [u8; 6] = [0xfb, 0xef, 0xbe, 0xff, 0xff, 0xff];

pub const DEFAULT_PAGE_SIZE: usize = 10;
pub const MAX_PAGE_SIZE: usize = 100;

#[derive(Serialize, Deserialize)]
struct Cursor {
    /// Hash of the request scope (method, parent, query).
    s: u64,
    /// Sort key of the last item on the previous page.
    t: i64,
    i: u64,
}

/// `pageSize`: absent or 0 → default, above the maximum → clamped, negative or not a
/// number → 400.
pub fn page_size(raw: Option<&str>) -> Result<usize, ApiError> {
    match raw.map(str::trim) {
        None | Some("") => Ok(DEFAULT_PAGE_SIZE),
        Some(s) => match s.parse::<i64>() {
            Ok(0) => Ok(DEFAULT_PAGE_SIZE),
            Ok(n) if n < 0 => Err(ApiError::bad_field(
                "page_size",
                format!("Invalid page_size {n}: must not be negative."),
            )),
            Ok(n) => Ok(usize::try_from(n)
                .unwrap_or(MAX_PAGE_SIZE)
                .min(MAX_PAGE_SIZE)),
            Err(_) => Err(ApiError::bad_field(
                "page_size",
                format!("Invalid value at 'page_size' (TYPE_INT32), \"{s}\""),
            )),
        },
    }
}

fn scope_hash(scope: &str) -> u64 {
    let mut h = DefaultHasher::new();
    scope.hash(&mut h);
    h.finish()
}

/// Returns one page of `items` (already sorted by key, descending) and the token for
/// the next page, if any.
pub fn paginate<T>(
    items: Vec<(SortKey, T)>,
    size: usize,
    token: Option<&str>,
    scope: &str,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    let scope_h = scope_hash(scope);
    let after = match token.filter(|t| !t.is_empty()) {
        None => None,
        Some(t) => {
            let invalid = || ApiError::bad_field("page_token", "Invalid page token.");
            let raw = STANDARD.decode(t).map_err(|_| invalid())?;
            let json = raw.strip_prefix(&MAGIC[..]).ok_or_else(invalid)?;
            let c: Cursor = serde_json::from_slice(json).map_err(|_| invalid())?;
            if c.s != scope_h {
                return Err(ApiError::bad_field(
                    "page_token",
                    "Invalid page token: it does not belong to this request.",
                ));
            }
            Some((c.t, c.i))
        }
    };
    let mut page = Vec::with_capacity(size.min(items.len()));
    let mut last_key = None;
    let mut more = false;
    for (key, item) in items {
        if after.is_some_and(|a| key >= a) {
            continue;
        }
        if page.len() == size {
            more = true;
            break;
        }
        last_key = Some(key);
        page.push(item);
    }
    let next = match (more, last_key) {
        (true, Some((t, i))) => {
            let c = Cursor { s: scope_h, t, i };
            serde_json::to_vec(&c).ok().map(|json| encode_token(&json))
        }
        _ => None,
    };
    Ok((page, next))
}

/// `MAGIC`, the cursor, and trailing spaces (JSON ignores them) up to a length of
/// 3n + 1, so the token ends in `==`.
fn encode_token(json: &[u8]) -> String {
    let mut raw = MAGIC.to_vec();
    raw.extend_from_slice(json);
    while raw.len() % 3 != 1 {
        raw.push(b' ');
    }
    STANDARD.encode(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(n: u64) -> Vec<(SortKey, u64)> {
        (0..n).rev().map(|i| ((i as i64, i), i)).collect()
    }

    #[test]
    fn pages_through_everything_once() {
        let mut token = None;
        let mut seen = vec![];
        loop {
            let (page, next) = paginate(items(25), 10, token.as_deref(), "s").unwrap();
            seen.extend(page);
            match next {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        assert_eq!(seen, (0..25).rev().collect::<Vec<_>>());
    }

    #[test]
    fn tokens_need_percent_encoding_in_a_url() {
        for n in [11, 25, 1000, 123_456] {
            let (_, next) = paginate(items(n), 10, None, "some scope").unwrap();
            let t = next.unwrap();
            assert!(
                t.starts_with("++++////") && t.ends_with("=="),
                "{t} needs encoding"
            );
            let (page, _) = paginate(items(n), 10, Some(&t), "some scope").unwrap();
            assert_eq!(page.first(), Some(&(n - 11)));
        }
        // The same cursor without its magic prefix is not a token.
        let bare = STANDARD.encode(format!(r#"{{"s":{},"t":1,"i":1}}"#, scope_hash("s")));
        assert!(paginate(items(3), 10, Some(&bare), "s").is_err());
    }

    #[test]
    fn an_exact_multiple_has_no_trailing_token() {
        let (page, next) = paginate(items(10), 10, None, "s").unwrap();
        assert_eq!(page.len(), 10);
        assert!(next.is_none());
    }

    #[test]
    fn bad_or_foreign_tokens_are_rejected() {
        assert_eq!(
            paginate(items(3), 10, Some("garbage!"), "s")
                .unwrap_err()
                .code,
            400
        );
        let (_, next) = paginate(items(30), 10, None, "a").unwrap();
        assert!(paginate(items(30), 10, next.as_deref(), "b").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(page_size(None).unwrap(), 10);
        assert_eq!(page_size(Some("0")).unwrap(), 10);
        assert_eq!(page_size(Some("1000")).unwrap(), 100);
        assert_eq!(page_size(Some("7")).unwrap(), 7);
        assert!(page_size(Some("-1")).is_err());
        assert!(page_size(Some("ten")).is_err());
    }
}
