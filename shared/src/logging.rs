//! Structured JSON logs for Cloud Logging (docs/FAILURES.md#what-the-shim-answers): one JSON object per line with
//! `severity`, `time`, `message`, the event's and its spans' fields flattened, and a span's
//! `trace` field written as `logging.googleapis.com/trace` so Cloud Logging groups a
//! request's lines. tracing-subscriber's own JSON format names the level `level` and nests
//! span fields, which Cloud Logging does not read, hence this small layer.

use serde_json::{Map, Value};
use std::io::Write;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// The span field that carries a Cloud Trace resource name.
pub const TRACE_FIELD: &str = "trace";

pub use crate::echo::{ECHO_LIMIT, capped};

struct JsonFields(Map<String, Value>);

impl Visit for JsonFields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(
            field.name().to_string(),
            Value::String(format!("{value:?}")),
        );
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0
            .insert(field.name().to_string(), Value::String(value.to_string()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_string(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_string(), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_string(), Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_string(), Value::from(value));
    }
}

/// Cloud Logging's severity names.
pub fn severity(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "ERROR",
        Level::WARN => "WARNING",
        Level::INFO => "INFO",
        Level::DEBUG | Level::TRACE => "DEBUG",
    }
}

/// Renders one log line; public so tests can check the shape without capturing stdout.
pub fn render(level: &Level, target: &str, mut fields: Map<String, Value>) -> String {
    let mut line = Map::new();
    line.insert("severity".into(), Value::String(severity(level).into()));
    line.insert(
        "time".into(),
        Value::String(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
    );
    let message = fields
        .remove("message")
        .unwrap_or(Value::String(String::new()));
    line.insert("message".into(), message);
    if let Some(trace) = fields.remove(TRACE_FIELD) {
        line.insert("logging.googleapis.com/trace".into(), trace);
    }
    line.insert("target".into(), Value::String(target.to_string()));
    for (k, v) in fields {
        line.entry(k).or_insert(v);
    }
    Value::Object(line).to_string()
}

/// A layer writing Cloud Logging JSON lines to stdout.
pub struct CloudLoggingLayer;

impl<S> Layer<S> for CloudLoggingLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = JsonFields(Map::new());
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(fields) = span.extensions_mut().get_mut::<JsonFields>()
        {
            values.record(fields);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = JsonFields(Map::new());
        event.record(&mut fields);
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope {
                if let Some(span_fields) = span.extensions().get::<JsonFields>() {
                    for (k, v) in &span_fields.0 {
                        fields.0.entry(k.clone()).or_insert_with(|| v.clone());
                    }
                }
            }
        }
        let line = render(
            event.metadata().level(),
            event.metadata().target(),
            fields.0,
        );
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
    }
}

/// Installs the global subscriber: Cloud Logging JSON, or a human-readable running log.
/// The filter comes from `RUST_LOG` (default `info`).
pub fn init(json: bool) {
    use tracing_subscriber::prelude::*;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    let result = if json {
        registry.with(CloudLoggingLayer).try_init()
    } else {
        registry
            .with(tracing_subscriber::fmt::layer().with_target(false))
            .try_init()
    };
    // A second init (tests) keeps the first subscriber.
    drop(result);
}

/// The most a fatal line repeats of its error; a configuration error is far shorter.
const FATAL_LINE_LIMIT: usize = 8 * 1024;

/// A fatal error as it is printed: one line, a Cloud Logging JSON line (`severity` ERROR)
/// when `json`, else `error: …`. Line breaks in the message become spaces.
pub fn fatal_line(json: bool, message: &str) -> String {
    let mut one_line = message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if let Some((end, _)) = one_line.char_indices().nth(FATAL_LINE_LIMIT) {
        let total = one_line.chars().count();
        one_line.truncate(end);
        one_line.push_str(&format!("… ({total} characters in all)"));
    }
    if json {
        let mut fields = Map::new();
        fields.insert("message".into(), Value::String(one_line));
        render(&Level::ERROR, "casesync", fields)
    } else {
        format!("error: {one_line}")
    }
}

/// Prints a fatal error as [`fatal_line`] on stderr.
pub fn print_fatal(json: bool, message: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{}", fatal_line(json, message));
}

/// How every binary ends: exit status 0 on success; otherwise its error (with its causes,
/// `{:#}`) as one line on stderr — JSON where JSON logging is on — and exit status 1.
/// Returning the error from `main` instead would print its `Debug`, which with
/// `RUST_BACKTRACE=1` carries a useless stripped backtrace.
pub fn exit_status<E: std::fmt::Display>(
    json: bool,
    result: Result<(), E>,
) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            print_fatal(json, &format!("{e:#}"));
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoed_values_are_capped_with_their_length() {
        assert_eq!(capped("42"), "42");
        let exact = "x".repeat(ECHO_LIMIT);
        assert_eq!(capped(&exact), exact.as_str());
        let huge = "k".repeat(1_400_000);
        let shown = capped(&huge);
        assert!(shown.starts_with(&"k".repeat(ECHO_LIMIT)), "{shown}");
        assert!(shown.ends_with("… (1400000 bytes in all)"), "{shown}");
        assert!(shown.len() < ECHO_LIMIT + 40);
        // Cut on a character, never inside one.
        let wide = "é".repeat(ECHO_LIMIT + 1);
        assert!(capped(&wide).starts_with(&"é".repeat(ECHO_LIMIT)));
    }

    #[test]
    fn a_fatal_error_is_one_line_and_json_when_asked() {
        let plain = fatal_line(false, "configuration key `sync.lease`: bad\n  more\r\n");
        assert_eq!(plain, "error: configuration key `sync.lease`: bad more");
        let json: Value = serde_json::from_str(&fatal_line(true, "a\nb")).unwrap();
        assert_eq!(json["severity"], "ERROR");
        assert_eq!(json["message"], "a b");
        assert!(!fatal_line(true, "x\ny").contains('\n'));
        let long = fatal_line(false, &"k".repeat(100_000));
        assert!(long.len() < FATAL_LINE_LIMIT + 100, "{}", long.len());
        assert!(long.ends_with("(100000 characters in all)"));
    }

    #[test]
    fn lines_carry_severity_message_trace_and_fields() {
        let mut fields = Map::new();
        fields.insert("message".into(), Value::String("synced".into()));
        fields.insert(
            TRACE_FIELD.into(),
            Value::String("projects/p/traces/abc".into()),
        );
        fields.insert("case_key".into(), Value::String("42".into()));
        let line: Value = serde_json::from_str(&render(&Level::WARN, "casesync", fields)).unwrap();
        assert_eq!(line["severity"], "WARNING");
        assert_eq!(line["message"], "synced");
        assert_eq!(
            line["logging.googleapis.com/trace"],
            "projects/p/traces/abc"
        );
        assert_eq!(line["case_key"], "42");
        assert!(line.get("trace").is_none());
    }
}
