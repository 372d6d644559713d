//! Every HTTP reply casesync reads is read to a cap (docs/ARCHITECTURE.md#security): a JSON reply to 16 MiB,
//! an error body to 64 KiB. A server that answers more, by mistake or on purpose, gets a
//! clear error instead of a function that runs out of memory.

use bytes::{Bytes, BytesMut};
use futures::StreamExt;

/// The most of a JSON reply casesync reads.
pub const MAX_JSON_REPLY: usize = 16 * 1024 * 1024;
/// The most of an error reply casesync reads: enough for any API's error object.
pub const MAX_ERROR_REPLY: usize = 64 * 1024;

/// Why a capped read failed.
#[derive(Debug, thiserror::Error)]
pub enum CapError {
    #[error("the reply is larger than {0} bytes")]
    TooLarge(usize),
    #[error("reading the reply: {0}")]
    Transport(#[from] reqwest::Error),
}

/// Reads a whole reply, refusing one longer than `max` (by its declared length at once,
/// else once the bytes read pass it).
pub async fn read_capped(response: reqwest::Response, max: usize) -> Result<Bytes, CapError> {
    if response
        .content_length()
        .is_some_and(|len| len > max as u64)
    {
        return Err(CapError::TooLarge(max));
    }
    let mut body = BytesMut::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        if body.len() + chunk.len() > max {
            return Err(CapError::TooLarge(max));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Reads at most `max` bytes of an error reply and drops the rest: the start of an error
/// body says what went wrong.
pub async fn read_error_body(response: reqwest::Response, max: usize) -> Bytes {
    let mut body = BytesMut::new();
    let mut stream = response.bytes_stream();
    while let Some(Ok(chunk)) = stream.next().await {
        let room = max.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= max {
            break;
        }
    }
    body.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// A server that answers once with `body`, with or without a Content-Length.
    fn serving(body: Vec<u8>, declare_length: bool) -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            if let Some(Ok(mut stream)) = listener.incoming().next() {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf);
                let head = if declare_length {
                    format!(
                        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                        body.len()
                    )
                } else {
                    "HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n".to_string()
                };
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&body);
            }
        });
        format!("http://{addr}/")
    }

    #[tokio::test]
    async fn a_reply_over_the_cap_is_refused_with_or_without_a_declared_length() {
        for declared in [true, false] {
            let url = serving(vec![b'x'; 10_000], declared);
            let response = reqwest::get(&url).await.unwrap();
            let err = read_capped(response, 9_999).await.unwrap_err();
            assert!(matches!(err, CapError::TooLarge(9_999)), "{err}");
            let url = serving(vec![b'x'; 10_000], declared);
            let response = reqwest::get(&url).await.unwrap();
            assert_eq!(read_capped(response, 10_000).await.unwrap().len(), 10_000);
        }
    }

    #[tokio::test]
    async fn an_error_body_is_cut_at_its_cap() {
        let url = serving(vec![b'e'; 200_000], false);
        let response = reqwest::get(&url).await.unwrap();
        assert_eq!(read_error_body(response, 1000).await.len(), 1000);
    }
}
