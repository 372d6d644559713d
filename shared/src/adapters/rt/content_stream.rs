//! RT's REST2 hands out an attachment only as JSON with its bytes base64-encoded in the
//! `Content` field (`GET /attachment/{id}`). Reading that reply whole and decoding it costs
//! about three times the file in memory, so this module decodes it as it streams: a small
//! JSON scanner walks the top-level object, and once it reaches the `Content` string it
//! decodes base64 in 4-character groups and hands the bytes on. Memory stays at one network
//! chunk plus a few bytes, whatever the file's size.
//!
//! Both the JSON read and the decoded bytes are capped, so the size limit holds even when
//! RT does not say how long the file is (a missing `ContentLength` reads as 0).

use crate::error::{PortError, PortResult};
use crate::ports::ByteStream;
use base64::Engine as _;
use bytes::Bytes;
use futures::{Stream, StreamExt};

/// What the scanner is doing with the next byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Walking the JSON around the `Content` value.
    Json,
    /// Inside the `Content` string: base64 text.
    Content,
    /// After the `Content` string: the rest of the reply is not needed.
    Done,
}

/// A streaming reader of one top-level JSON object that decodes its `Content` string.
#[derive(Debug)]
pub struct ContentDecoder {
    phase: Phase,
    depth: u32,
    in_string: bool,
    escaped: bool,
    reading_key: bool,
    expecting_key: bool,
    key: Vec<u8>,
    last_key: Vec<u8>,
    value_is_content: bool,
    /// Base64 characters not yet decoded (fewer than 4 between calls).
    pending: Vec<u8>,
    decoded_total: u64,
    max_decoded: u64,
}

/// The longest key the scanner remembers; `Content` is 7 bytes.
const MAX_KEY: usize = 32;

impl ContentDecoder {
    pub fn new(max_decoded: u64) -> Self {
        ContentDecoder {
            phase: Phase::Json,
            depth: 0,
            in_string: false,
            escaped: false,
            reading_key: false,
            expecting_key: false,
            key: Vec::new(),
            last_key: Vec::new(),
            value_is_content: false,
            pending: Vec::with_capacity(8),
            decoded_total: 0,
            max_decoded,
        }
    }

    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// Feeds the next bytes of the reply; returns the decoded bytes they completed.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Vec<u8>, String> {
        let mut text: Vec<u8> = Vec::new();
        for &b in chunk {
            match self.phase {
                Phase::Done => break,
                Phase::Json => self.json_byte(b),
                Phase::Content => {
                    if self.escaped {
                        self.escaped = false;
                        match b {
                            b'/' => text.push(b'/'),
                            // Line breaks inside the base64 text, written as JSON escapes.
                            b'n' | b'r' | b't' => {}
                            _ => {
                                return Err(format!(
                                    "unexpected escape \\{} in Content",
                                    b as char
                                ));
                            }
                        }
                    } else {
                        match b {
                            b'\\' => self.escaped = true,
                            b'"' => self.phase = Phase::Done,
                            b if b.is_ascii_whitespace() => {}
                            b => text.push(b),
                        }
                    }
                }
            }
        }
        self.pending.extend_from_slice(&text);
        let whole = if self.phase == Phase::Done {
            self.pending.len()
        } else {
            self.pending.len() / 4 * 4
        };
        let ready: Vec<u8> = self.pending.drain(..whole).collect();
        if ready.is_empty() {
            return Ok(Vec::new());
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&ready)
            .map_err(|_| "Content is not base64".to_string())?;
        self.decoded_total += bytes.len() as u64;
        if self.decoded_total > self.max_decoded {
            return Err(format!(
                "the attachment is larger than the {} byte limit (sync.max_attachment_bytes)",
                self.max_decoded
            ));
        }
        Ok(bytes)
    }

    fn json_byte(&mut self, b: u8) {
        if self.in_string {
            if self.escaped {
                self.escaped = false;
                if self.reading_key && self.key.len() < MAX_KEY {
                    self.key.push(b);
                }
            } else if b == b'\\' {
                self.escaped = true;
            } else if b == b'"' {
                self.in_string = false;
                if self.reading_key {
                    self.reading_key = false;
                    self.last_key = std::mem::take(&mut self.key);
                }
            } else if self.reading_key && self.key.len() < MAX_KEY {
                self.key.push(b);
            }
            return;
        }
        match b {
            b'{' | b'[' => {
                self.depth += 1;
                self.expecting_key = self.depth == 1 && b == b'{';
            }
            b'}' | b']' => self.depth = self.depth.saturating_sub(1),
            b',' if self.depth == 1 => {
                self.expecting_key = true;
                self.value_is_content = false;
            }
            b':' if self.depth == 1 => {
                self.expecting_key = false;
                self.value_is_content = self.last_key == b"Content";
            }
            b'"' => {
                if self.depth == 1 && self.expecting_key {
                    self.in_string = true;
                    self.reading_key = true;
                    self.key.clear();
                } else if self.depth == 1 && self.value_is_content {
                    self.phase = Phase::Content;
                } else {
                    self.in_string = true;
                }
            }
            _ => {}
        }
    }
}

/// The decoded bytes of an RT attachment reply, streamed. Fails once the reply exceeds
/// `max_json_bytes` or the decoded file exceeds `max_decoded` (both permanent: the same
/// file fails the same way again), or when the reply ends before its `Content` did.
pub fn decode_content<S, E>(
    op: &'static str,
    reply: S,
    max_json_bytes: u64,
    max_decoded: u64,
) -> ByteStream
where
    S: Stream<Item = Result<Bytes, E>> + Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    struct State<S> {
        reply: std::pin::Pin<Box<S>>,
        decoder: ContentDecoder,
        read: u64,
        finished: bool,
    }
    let state = State {
        reply: Box::pin(reply),
        decoder: ContentDecoder::new(max_decoded),
        read: 0,
        finished: false,
    };
    futures::stream::unfold(state, move |mut st| async move {
        if st.finished {
            return None;
        }
        loop {
            if st.decoder.is_done() {
                return None;
            }
            let fail = |st: &mut State<S>, message: String| -> PortResult<Bytes> {
                st.finished = true;
                Err(PortError::permanent(op, message))
            };
            match st.reply.next().await {
                None => {
                    let e = fail(&mut st, "the reply ended inside the attachment".into());
                    return Some((e, st));
                }
                Some(Err(e)) => {
                    st.finished = true;
                    let e = Err(PortError::retryable(op, format!("reading the attachment: {e}")));
                    return Some((e, st));
                }
                Some(Ok(chunk)) => {
                    st.read += chunk.len() as u64;
                    if st.read > max_json_bytes {
                        let e = fail(
                            &mut st,
                            format!(
                                "the attachment reply is larger than {max_json_bytes} bytes: the file exceeds sync.max_attachment_bytes"
                            ),
                        );
                        return Some((e, st));
                    }
                    match st.decoder.feed(&chunk) {
                        Ok(bytes) if bytes.is_empty() => continue,
                        Ok(bytes) => return Some((Ok(Bytes::from(bytes)), st)),
                        Err(message) => {
                            let e = fail(&mut st, message);
                            return Some((e, st));
                        }
                    }
                }
            }
        }
    })
    .boxed()
}

/// The most JSON a reply carrying a file of at most `max_decoded` bytes can be: base64's
/// 4/3 plus 64 KiB for the other fields (docs/ARCHITECTURE.md#security).
pub fn max_reply_bytes(max_decoded: u64) -> u64 {
    max_decoded.saturating_mul(4).div_ceil(3) + 64 * 1024
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply_with(content_b64: &str) -> String {
        format!(
            r#"{{"id":10,"Filename":"a.bin","Headers":"Content-Disposition: inline; filename=\"Content\"\n","ContentType":"application/octet-stream","TransactionId":{{"id":"41","Content":"bm8="}},"Content":"{content_b64}","ContentLength":"3"}}"#
        )
    }

    async fn decode_in_chunks(json: &str, chunk: usize, max: u64) -> PortResult<Vec<u8>> {
        let chunks: Vec<Result<Bytes, std::io::Error>> = json
            .as_bytes()
            .chunks(chunk)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let mut stream = decode_content(
            "test",
            futures::stream::iter(chunks),
            max_reply_bytes(max),
            max,
        );
        let mut out = Vec::new();
        while let Some(part) = stream.next().await {
            out.extend_from_slice(&part?);
        }
        Ok(out)
    }

    #[tokio::test]
    async fn the_top_level_content_is_decoded_whatever_the_chunking() {
        let data: Vec<u8> = (0..=255u8).cycle().take(3001).collect();
        let b64 = base64::engine::general_purpose::STANDARD.encode(&data);
        // RT's JSON may break the base64 text into lines and escape slashes.
        let wrapped: String = b64
            .as_bytes()
            .chunks(76)
            .map(|l| String::from_utf8_lossy(l).replace('/', "\\/"))
            .collect::<Vec<_>>()
            .join("\\n");
        let json = reply_with(&wrapped);
        for chunk in [1, 2, 3, 5, 7, 64, 4096] {
            assert_eq!(
                decode_in_chunks(&json, chunk, 1 << 20).await.unwrap(),
                data,
                "chunks of {chunk}"
            );
        }
    }

    #[tokio::test]
    async fn the_limit_holds_without_a_known_length() {
        let data = vec![7u8; 10_000];
        let json = reply_with(&base64::engine::general_purpose::STANDARD.encode(&data));
        let err = decode_in_chunks(&json, 512, 9_999).await.unwrap_err();
        assert_eq!(err.class(), crate::error::ErrorClass::Permanent);
        assert!(
            err.to_string().contains("sync.max_attachment_bytes"),
            "{err}"
        );
        assert_eq!(decode_in_chunks(&json, 512, 10_000).await.unwrap(), data);
    }

    #[tokio::test]
    async fn a_reply_far_over_the_limit_is_cut_off_by_its_size() {
        let padding = "x".repeat(200_000);
        let json = format!(r#"{{"Headers":"{padding}","Content":"AAAA"}}"#);
        let err = decode_in_chunks(&json, 4096, 1000).await.unwrap_err();
        assert!(err.to_string().contains("larger than"), "{err}");
    }

    #[tokio::test]
    async fn broken_replies_are_errors_not_empty_files() {
        assert!(
            decode_in_chunks(r#"{"Content":"AAA"#, 3, 100)
                .await
                .is_err()
        );
        assert!(
            decode_in_chunks(r#"{"Filename":"a"}"#, 3, 100)
                .await
                .is_err()
        );
        assert!(
            decode_in_chunks(r#"{"Content":"A!A="}"#, 3, 100)
                .await
                .is_err()
        );
    }
}
