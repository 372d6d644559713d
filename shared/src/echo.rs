//! Values from outside (a case key, a token claim, a reason that quotes a body) are echoed
//! in errors, log lines and responses only up to a limit. Cloud Logging drops entries over
//! 256 KB, so an uncapped 1.4 MB case key lost the very line that named the problem. This
//! sits at the bottom layer, beside `error`, so the domain's own errors use it too.

/// How many characters of an outside value an error, a log line or a response repeats.
pub const ECHO_LIMIT: usize = 200;

/// `value` as it may be echoed: whole up to [`ECHO_LIMIT`] characters, otherwise its first
/// [`ECHO_LIMIT`] characters followed by its length, so a reader still sees how big it was.
pub fn capped(value: &str) -> std::borrow::Cow<'_, str> {
    match value.char_indices().nth(ECHO_LIMIT) {
        None => std::borrow::Cow::Borrowed(value),
        Some((end, _)) => {
            std::borrow::Cow::Owned(format!("{}… ({} bytes in all)", &value[..end], value.len()))
        }
    }
}
