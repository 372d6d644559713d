//! Multipart bodies of `media.upload`.
//!
//! Google's upload protocol sends `multipart/related` (a JSON metadata part, then the
//! media part), which axum's form-data extractor does not accept; HTTP clients that
//! build a form send `multipart/form-data` instead. Both are split here, without
//! copying the media bytes.

use bytes::Bytes;

/// One part of a multipart body; header names are lower-cased.
#[derive(Debug, Clone)]
pub struct Part {
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl Part {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The media type of the part without parameters, lower-cased.
    pub fn content_type(&self) -> Option<String> {
        self.header("content-type").map(essence)
    }

    /// A parameter of `Content-Disposition` (`name`, `filename`).
    pub fn disposition_param(&self, key: &str) -> Option<String> {
        self.header("content-disposition")
            .and_then(|v| header_param(v, key))
    }
}

/// `text/plain; charset=utf-8` → `text/plain`.
pub fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// A `key=value` parameter of a header value, unquoted.
pub fn header_param(value: &str, key: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        if !k.trim().eq_ignore_ascii_case(key) {
            return None;
        }
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(v);
        Some(v.replace("\\\"", "\""))
    })
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    (from..=hay.len() - needle.len()).find(|&i| hay[i..].starts_with(needle))
}

/// Splits a multipart body. `content_type` must carry the `boundary` parameter.
pub fn parse_multipart(content_type: &str, body: &Bytes) -> Result<Vec<Part>, String> {
    if !essence(content_type).starts_with("multipart/") {
        return Err(format!("expected a multipart body, got {content_type:?}"));
    }
    let boundary = header_param(content_type, "boundary")
        .filter(|b| !b.is_empty())
        .ok_or("multipart Content-Type without a boundary")?;
    let delim = format!("--{boundary}");
    let delim = delim.as_bytes();
    let mut pos = find(body, delim, 0).ok_or("multipart boundary not found in the body")?;
    let mut parts = Vec::new();
    loop {
        pos += delim.len();
        if body[pos..].starts_with(b"--") {
            break;
        }
        // Skip transport padding and the line break after the delimiter.
        while pos < body.len() && (body[pos] == b' ' || body[pos] == b'\t') {
            pos += 1;
        }
        if body[pos..].starts_with(b"\r\n") {
            pos += 2;
        } else if body[pos..].starts_with(b"\n") {
            pos += 1;
        } else {
            return Err("malformed multipart delimiter line".into());
        }
        // A delimiter only counts at the start of a line, so media bytes that happen
        // to contain `--boundary` mid-line are not cut.
        let crlf_delim = [b"\r\n".as_slice(), delim].concat();
        let lf_delim = [b"\n".as_slice(), delim].concat();
        let (end, next) = match find(body, &crlf_delim, pos) {
            Some(i) => (i, i + 2),
            None => match find(body, &lf_delim, pos) {
                Some(i) => (i, i + 1),
                None => return Err("multipart body is not terminated".into()),
            },
        };
        parts.push(parse_part(body.slice(pos..end))?);
        pos = next;
    }
    Ok(parts)
}

fn parse_part(raw: Bytes) -> Result<Part, String> {
    let (head_end, body_start) = if raw.starts_with(b"\r\n") {
        (0, 2)
    } else if raw.starts_with(b"\n") {
        (0, 1)
    } else if let Some(i) = find(&raw, b"\r\n\r\n", 0) {
        (i, i + 4)
    } else if let Some(i) = find(&raw, b"\n\n", 0) {
        (i, i + 2)
    } else {
        return Err("multipart part without a header/body separator".into());
    };
    let head = std::str::from_utf8(&raw[..head_end]).map_err(|_| "non-UTF-8 part headers")?;
    let headers = head
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (n, v) = l.split_once(':').ok_or("malformed part header")?;
            Ok((n.trim().to_ascii_lowercase(), v.trim().to_string()))
        })
        .collect::<Result<Vec<_>, &str>>()?;
    Ok(Part {
        headers,
        body: raw.slice(body_start..),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_related_bodies() {
        let body = Bytes::from_static(
            b"--XYZ\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n{\"attachment\":{\"filename\":\"a.txt\"}}\r\n--XYZ\r\nContent-Type: text/plain\r\n\r\nline1\r\nline2\r\n\r\n--XYZ--\r\n",
        );
        let parts = parse_multipart("multipart/related; boundary=XYZ", &body).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].content_type().as_deref(), Some("application/json"));
        assert_eq!(&parts[1].body[..], b"line1\r\nline2\r\n");
    }

    #[test]
    fn splits_form_data_with_quoted_boundary() {
        let body = Bytes::from_static(
            b"--a\"b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n\x00\x01--a\r\n--a\"b--",
        );
        let parts = parse_multipart("multipart/form-data; boundary=\"a\\\"b\"", &body).unwrap();
        assert_eq!(parts.len(), 1);
        assert_eq!(
            parts[0].disposition_param("filename").as_deref(),
            Some("x.bin")
        );
        assert_eq!(&parts[0].body[..], b"\x00\x01--a");
    }

    #[test]
    fn rejects_garbage() {
        let body = Bytes::from_static(b"no boundary here");
        assert!(parse_multipart("multipart/related; boundary=XYZ", &body).is_err());
        assert!(parse_multipart("multipart/related", &body).is_err());
        assert!(parse_multipart("text/plain", &body).is_err());
    }
}
