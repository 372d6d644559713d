//! Plain text ⇄ Atlassian Document Format. Jira's v3 API takes and returns comment and
//! description bodies only as ADF, while casesync mirrors plain text; a mirror must come
//! back exactly as written, or the marker on its first line (docs/INVARIANTS.md#markers) and the exactly-once
//! bookkeeping that reads it would break.
//!
//! Reading joins block nodes (paragraphs) with one line break and turns `hardBreak` into
//! one, because in Jira's editor Enter starts a paragraph: a person's lines read as lines,
//! not as double-spaced text. Writing is the inverse on every string: a run of non-empty
//! lines becomes one paragraph with `hardBreak`s between its lines, and each empty line
//! an empty paragraph. Lines joined by `"\n"` within and between paragraphs are the
//! original lines joined by `"\n"`, so blank lines, leading and trailing breaks all
//! survive. What a person writes with richer formatting (headings, lists, mentions, code)
//! is flattened to readable text.

use serde_json::{Value, json};

/// The ADF document for `text`.
pub fn text_to_adf(text: &str) -> Value {
    let mut paragraphs = Vec::new();
    let mut run: Vec<&str> = Vec::new();
    for line in text.split('\n') {
        if line.is_empty() {
            if !run.is_empty() {
                paragraphs.push(paragraph(&run));
                run.clear();
            }
            paragraphs.push(paragraph(&[]));
        } else {
            run.push(line);
        }
    }
    if !run.is_empty() {
        paragraphs.push(paragraph(&run));
    }
    json!({ "type": "doc", "version": 1, "content": paragraphs })
}

/// One paragraph of non-empty lines (ADF forbids empty text nodes).
fn paragraph(lines: &[&str]) -> Value {
    let mut content = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if i > 0 {
            content.push(json!({ "type": "hardBreak" }));
        }
        content.push(json!({ "type": "text", "text": line }));
    }
    json!({ "type": "paragraph", "content": content })
}

/// The plain text of an ADF document (or of any ADF node). A JSON string is taken as
/// text already, so a v2-style plain body still reads.
pub fn adf_to_text(doc: &Value) -> String {
    match doc {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        node => blocks_text(children(node)),
    }
}

fn children(node: &Value) -> &[Value] {
    node.get("content")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn node_type(node: &Value) -> &str {
    node.get("type").and_then(Value::as_str).unwrap_or("")
}

fn attr<'a>(node: &'a Value, name: &str) -> Option<&'a str> {
    node.get("attrs")?.get(name)?.as_str()
}

/// Block nodes, one line apart.
fn blocks_text(nodes: &[Value]) -> String {
    nodes.iter().map(block_text).collect::<Vec<_>>().join("\n")
}

fn block_text(node: &Value) -> String {
    match node_type(node) {
        "paragraph" | "heading" => inline_text(children(node)),
        "codeBlock" => children(node)
            .iter()
            .map(inline_node_text)
            .collect::<String>(),
        "bulletList" => list_text(node, |_| "- ".to_string()),
        "orderedList" => {
            let start = node
                .get("attrs")
                .and_then(|a| a.get("order"))
                .and_then(Value::as_u64)
                .unwrap_or(1);
            list_text(node, move |i| format!("{}. ", start + i as u64))
        }
        "blockquote" => blocks_text(children(node))
            .lines()
            .map(|l| format!("> {l}"))
            .collect::<Vec<_>>()
            .join("\n"),
        "rule" => "---".to_string(),
        "mediaSingle" | "mediaGroup" => "[attachment]".to_string(),
        "table" => children(node)
            .iter()
            .map(|row| {
                children(row)
                    .iter()
                    .map(|cell| blocks_text(children(cell)).replace('\n', " "))
                    .collect::<Vec<_>>()
                    .join(" | ")
            })
            .collect::<Vec<_>>()
            .join("\n"),
        "text" | "hardBreak" | "mention" | "emoji" | "inlineCard" | "date" | "status" => {
            inline_node_text(node)
        }
        // Panels, expands, layouts and whatever Atlassian adds later: their blocks.
        _ => blocks_text(children(node)),
    }
}

fn list_text(node: &Value, bullet: impl Fn(usize) -> String) -> String {
    children(node)
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let body = children(item)
                .iter()
                .map(block_text)
                .collect::<Vec<_>>()
                .join("\n");
            let mut lines = body.lines();
            let first = format!("{}{}", bullet(i), lines.next().unwrap_or(""));
            std::iter::once(first)
                .chain(lines.map(|l| format!("  {l}")))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn inline_text(nodes: &[Value]) -> String {
    nodes.iter().map(inline_node_text).collect()
}

fn inline_node_text(node: &Value) -> String {
    match node_type(node) {
        "text" => {
            let text = node.get("text").and_then(Value::as_str).unwrap_or("");
            let href = node
                .get("marks")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .find(|m| node_type(m) == "link")
                .and_then(|m| attr(m, "href"));
            match href {
                Some(href) if href != text => format!("{text} ({href})"),
                _ => text.to_string(),
            }
        }
        "hardBreak" => "\n".to_string(),
        "mention" => attr(node, "text").unwrap_or("@someone").to_string(),
        "emoji" => attr(node, "text")
            .or_else(|| attr(node, "shortName"))
            .unwrap_or("")
            .to_string(),
        "inlineCard" | "blockCard" | "embedCard" => attr(node, "url").unwrap_or("").to_string(),
        "date" => attr(node, "timestamp")
            .and_then(|ms| ms.parse::<i64>().ok())
            .and_then(chrono::DateTime::from_timestamp_millis)
            .map(|t| t.format("%Y-%m-%d").to_string())
            .unwrap_or_default(),
        "status" => attr(node, "text").unwrap_or("").to_string(),
        _ => block_text(node),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(text: &str) {
        let adf = text_to_adf(text);
        assert_eq!(adf_to_text(&adf), text, "round trip of {text:?} via {adf}");
    }

    #[test]
    fn plain_text_survives_the_round_trip() {
        for text in [
            "",
            "one line",
            "[Google Comment 123 by Gina (Google)]\nbody",
            "[Company Comment 10042 by Alex Agent] (part 2/3)\nsecond part",
            "a\nb\nc",
            "a\n\nb",
            "a\n\n\nb",
            "a\n\n\n\nb",
            "\nleading break",
            "\n\nleading blank line",
            "trailing break\n",
            "trailing blank line\n\n",
            "\n",
            "\n\n\n",
            "  indented\n\ttabbed  ",
            "markup <b>&amp;</b> *bold* {code} [link|http://x] \u{2713} \u{1F600}",
            "CONTENT MIRRORED FROM GOOGLE SUPPORT:\nThe VM does not boot.\n\nhttps://console.cloud.google.com/support/cases/detail/v2/1",
        ] {
            round_trip(text);
        }
    }

    #[test]
    fn runs_of_lines_become_paragraphs_and_blank_lines_empty_ones() {
        let adf = text_to_adf("[Google Comment 1 by G]\nline\n\n\nafter");
        assert_eq!(
            adf,
            json!({"type": "doc", "version": 1, "content": [
                {"type": "paragraph", "content": [
                    {"type": "text", "text": "[Google Comment 1 by G]"},
                    {"type": "hardBreak"},
                    {"type": "text", "text": "line"},
                ]},
                {"type": "paragraph", "content": []},
                {"type": "paragraph", "content": []},
                {"type": "paragraph", "content": [{"type": "text", "text": "after"}]},
            ]})
        );
        let empty = text_to_adf("");
        assert_eq!(
            empty["content"],
            json!([{"type": "paragraph", "content": []}])
        );
    }

    #[test]
    fn a_person_pressing_enter_per_line_reads_as_lines() {
        // Jira's editor: Enter starts a paragraph, Enter on an empty one leaves it empty.
        let doc = json!({"type": "doc", "version": 1, "content": [
            {"type": "paragraph", "content": [{"type": "text", "text": "Hello"}]},
            {"type": "paragraph", "content": [{"type": "text", "text": "World"}]},
            {"type": "paragraph", "content": []},
            {"type": "paragraph", "content": [
                {"type": "text", "text": "shift"}, {"type": "hardBreak"}, {"type": "text", "text": "enter"},
            ]},
        ]});
        assert_eq!(adf_to_text(&doc), "Hello\nWorld\n\nshift\nenter");
    }

    #[test]
    fn what_a_person_writes_in_the_editor_reads_as_text() {
        let doc = json!({"type": "doc", "version": 1, "content": [
            {"type": "heading", "attrs": {"level": 2}, "content": [{"type": "text", "text": "Steps"}]},
            {"type": "orderedList", "content": [
                {"type": "listItem", "content": [{"type": "paragraph", "content": [{"type": "text", "text": "reboot"}]}]},
                {"type": "listItem", "content": [{"type": "paragraph", "content": [
                    {"type": "text", "text": "ask "},
                    {"type": "mention", "attrs": {"id": "x", "text": "@Gina"}},
                    {"type": "text", "text": " "},
                    {"type": "emoji", "attrs": {"shortName": ":smile:", "text": "\u{1F604}"}},
                ]}]},
            ]},
            {"type": "bulletList", "content": [
                {"type": "listItem", "content": [{"type": "paragraph", "content": [
                    {"type": "text", "text": "docs", "marks": [{"type": "link", "attrs": {"href": "https://cloud.google.com"}}]},
                ]}]},
            ]},
            {"type": "codeBlock", "attrs": {"language": "sh"}, "content": [{"type": "text", "text": "gcloud compute ssh vm\nexit"}]},
            {"type": "panel", "attrs": {"panelType": "info"}, "content": [
                {"type": "paragraph", "content": [{"type": "inlineCard", "attrs": {"url": "https://x.example"}}]},
            ]},
        ]});
        assert_eq!(
            adf_to_text(&doc),
            "Steps\n1. reboot\n2. ask @Gina \u{1F604}\n- docs (https://cloud.google.com)\n\
             gcloud compute ssh vm\nexit\nhttps://x.example"
        );
    }

    #[test]
    fn null_and_string_bodies_read_as_text() {
        assert_eq!(adf_to_text(&Value::Null), "");
        assert_eq!(adf_to_text(&json!("plain v2 body")), "plain v2 body");
    }
}
