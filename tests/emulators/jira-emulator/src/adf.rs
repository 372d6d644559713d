//! Atlassian Document Format helpers. Platform API v3 takes and returns rich text only as
//! ADF, so the emulator must reject what real Jira rejects (a plain string body, a
//! malformed document) and must turn ADF into the plain text that tests and the control
//! API compare against.

use serde_json::{Value, json};

/// Deeper documents than this are refused rather than walked, so a hostile body cannot
/// exhaust the stack.
const MAX_DEPTH: usize = 64;

/// Wraps plain text into an ADF document: one paragraph per line, an empty paragraph for
/// an empty line, so that [`adf_to_text`] gives the same text back.
pub fn text_to_adf(text: &str) -> Value {
    let paragraphs: Vec<Value> = text
        .split('\n')
        .map(|line| {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.is_empty() {
                json!({"type": "paragraph", "content": []})
            } else {
                json!({"type": "paragraph", "content": [{"type": "text", "text": line}]})
            }
        })
        .collect();
    json!({"type": "doc", "version": 1, "content": paragraphs})
}

/// Flattens an ADF document to text: block nodes are separated by a newline, a
/// `hardBreak` is a newline, mentions, emoji and cards contribute their visible text.
pub fn adf_to_text(doc: &Value) -> String {
    node_text(doc, 0)
}

fn node_text(node: &Value, depth: usize) -> String {
    if depth > MAX_DEPTH {
        return String::new();
    }
    let kind = node.get("type").and_then(Value::as_str).unwrap_or("");
    let attr = |name: &str| {
        node.get("attrs")
            .and_then(|a| a.get(name))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let children = || -> Vec<String> {
        node.get("content")
            .and_then(Value::as_array)
            .map(|items| items.iter().map(|c| node_text(c, depth + 1)).collect())
            .unwrap_or_default()
    };
    match kind {
        "text" => node
            .get("text")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        "hardBreak" => "\n".to_string(),
        "mention" | "status" => attr("text"),
        "emoji" => {
            let text = attr("text");
            if text.is_empty() {
                attr("shortName")
            } else {
                text
            }
        }
        "inlineCard" | "blockCard" | "embedCard" => attr("url"),
        // Inline containers: their children are runs of text on one line.
        "paragraph" | "heading" | "codeBlock" => children().concat(),
        // Everything else (doc, lists, quotes, panels, tables) stacks blocks.
        _ => children().join("\n"),
    }
}

/// Checks the minimum real Jira checks before accepting a document: an object of type
/// `doc`, version 1, a `content` array, and well-formed nodes inside it.
pub fn validate_adf(value: &Value) -> Result<(), String> {
    let obj = value
        .as_object()
        .ok_or_else(|| "the document is not a JSON object".to_string())?;
    if obj.get("type").and_then(Value::as_str) != Some("doc") {
        return Err("the top-level node must have type 'doc'".to_string());
    }
    if obj.get("version").and_then(Value::as_u64) != Some(1) {
        return Err("the document version must be 1".to_string());
    }
    let content = obj
        .get("content")
        .and_then(Value::as_array)
        .ok_or_else(|| "the document must have a 'content' array".to_string())?;
    content.iter().try_for_each(|node| validate_node(node, 1))
}

fn validate_node(node: &Value, depth: usize) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err("the document is nested too deeply".to_string());
    }
    let obj = node
        .as_object()
        .ok_or_else(|| "every node must be a JSON object".to_string())?;
    let kind = obj
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| "every node must have a string 'type'".to_string())?;
    if kind == "doc" {
        return Err("'doc' may only be the top-level node".to_string());
    }
    if kind == "text" {
        match obj.get("text").and_then(Value::as_str) {
            Some(text) if !text.is_empty() => {}
            _ => return Err("a text node needs a non-empty 'text'".to_string()),
        }
    }
    if let Some(marks) = obj.get("marks")
        && !marks.is_array()
    {
        return Err("'marks' must be an array".to_string());
    }
    match obj.get("content") {
        None => Ok(()),
        Some(Value::Array(items)) => items
            .iter()
            .try_for_each(|child| validate_node(child, depth + 1)),
        Some(_) => Err("'content' must be an array".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trips_through_adf() {
        let text = "[Google Comment 3 by Ann]\nfirst line\n\nafter a blank line";
        let doc = text_to_adf(text);
        assert!(validate_adf(&doc).is_ok());
        assert_eq!(adf_to_text(&doc), text);
    }

    #[test]
    fn empty_text_is_a_valid_document() {
        let doc = text_to_adf("");
        assert!(validate_adf(&doc).is_ok());
        assert_eq!(adf_to_text(&doc), "");
    }

    #[test]
    fn flattens_rich_nodes() {
        let doc = json!({"type": "doc", "version": 1, "content": [
            {"type": "heading", "attrs": {"level": 1}, "content": [{"type": "text", "text": "Title"}]},
            {"type": "paragraph", "content": [
                {"type": "text", "text": "hi "},
                {"type": "mention", "attrs": {"id": "x", "text": "@Ann"}},
                {"type": "hardBreak"},
                {"type": "text", "text": "bold", "marks": [{"type": "strong"}]}
            ]},
            {"type": "bulletList", "content": [
                {"type": "listItem", "content": [{"type": "paragraph", "content": [{"type": "text", "text": "one"}]}]},
                {"type": "listItem", "content": [{"type": "paragraph", "content": [{"type": "text", "text": "two"}]}]}
            ]}
        ]});
        assert!(validate_adf(&doc).is_ok());
        assert_eq!(adf_to_text(&doc), "Title\nhi @Ann\nbold\none\ntwo");
    }

    #[test]
    fn rejects_what_jira_rejects() {
        assert!(validate_adf(&json!("plain text")).is_err());
        assert!(validate_adf(&json!({"type": "doc", "content": []})).is_err());
        assert!(validate_adf(&json!({"type": "doc", "version": 2, "content": []})).is_err());
        assert!(validate_adf(&json!({"type": "paragraph", "version": 1, "content": []})).is_err());
        assert!(validate_adf(&json!({"type": "doc", "version": 1})).is_err());
        assert!(validate_adf(&json!({"type": "doc", "version": 1, "content": "x"})).is_err());
        assert!(
            validate_adf(&json!({"type": "doc", "version": 1, "content": [
                {"type": "paragraph", "content": [{"type": "text", "text": ""}]}
            ]}))
            .is_err()
        );
        assert!(
            validate_adf(&json!({"type": "doc", "version": 1, "content": [{"content": []}]}))
                .is_err()
        );
        assert!(validate_adf(&json!({"type": "doc", "version": 1, "content": []})).is_ok());
    }
}
