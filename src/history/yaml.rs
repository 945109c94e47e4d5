//! History documents in YAML (Aidbox's REST console and most of its documentation answer YAML):
//! each document of a file (`---` between documents) read as the same JSON would be. YAML's own
//! typing holds — Aidbox quotes the strings that would read as numbers, dates or booleans — and
//! plain timestamps stay strings (the YAML 1.2 core schema has no timestamp type).

use serde_json::{Map, Number, Value};
use yaml_rust2::{Yaml, YamlLoader};

/// One document of a YAML file: its text, and the line and byte offset where it starts.
pub(crate) struct Document<'a> {
    pub(crate) text: &'a str,
    pub(crate) line: u64,
    pub(crate) offset: usize,
}

/// The documents of a YAML file, split at the `---` lines that separate them.
pub(crate) fn documents(text: &str) -> Vec<Document<'_>> {
    let mut docs = Vec::new();
    let (mut start, mut start_line) = (0usize, 1u64);
    let mut offset = 0usize;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let bare = line.trim_end();
        if bare == "---" || bare.starts_with("--- ") || bare == "..." {
            if text[start..offset].trim().is_empty() {
                // Nothing before the marker: the document starts after it.
            } else {
                docs.push(Document { text: &text[start..offset], line: start_line, offset: start });
            }
            start = offset + line.len();
            start_line = i as u64 + 2;
        }
        offset += line.len();
    }
    if !text[start..].trim().is_empty() {
        docs.push(Document { text: &text[start..], line: start_line, offset: start });
    }
    docs
}

/// A YAML document as JSON. `Err` says what is wrong, with the line inside the document.
pub(crate) fn to_json(doc: &str) -> Result<Value, (u64, String)> {
    // Nesting is refused before the YAML reader recurses into it (it would exhaust the stack):
    // blocks by their indentation, flow collections by their brackets.
    for (i, line) in doc.lines().enumerate() {
        let indent = line.len() - line.trim_start_matches(' ').len();
        let open = line.bytes().filter(|b| matches!(b, b'[' | b'{')).count();
        if indent > 2 * MAX_DEPTH || open > MAX_DEPTH {
            return Err((i as u64 + 1, format!("YAML nested deeper than {MAX_DEPTH} levels")));
        }
    }
    let mut loaded = YamlLoader::load_from_str(doc)
        .map_err(|e| (e.marker().line() as u64, format!("unreadable YAML at column {}", e.marker().col() + 1)))?;
    let yaml = match loaded.len() {
        1 => loaded.pop().expect("one document"),
        0 => return Err((1, "an empty YAML document".into())),
        _ => return Err((1, "more than one YAML document where one was expected".into())),
    };
    value(yaml, 0).map_err(|what| (1, what))
}

/// Nesting deeper than this is refused, as serde_json refuses JSON nested deeper than 128.
const MAX_DEPTH: usize = 128;

fn value(y: Yaml, depth: usize) -> Result<Value, String> {
    if depth > MAX_DEPTH {
        return Err(format!("YAML nested deeper than {MAX_DEPTH} levels"));
    }
    Ok(match y {
        Yaml::Null => Value::Null,
        Yaml::Boolean(b) => Value::Bool(b),
        Yaml::Integer(i) => Value::Number(i.into()),
        Yaml::Real(text) => match text.parse::<f64>().ok().and_then(Number::from_f64) {
            Some(n) => Value::Number(n),
            None => Value::String(text),
        },
        Yaml::String(s) => Value::String(s),
        Yaml::Array(items) => Value::Array(items.into_iter().map(|i| value(i, depth + 1)).collect::<Result<_, _>>()?),
        Yaml::Hash(entries) => {
            let mut obj = Map::new();
            for (k, v) in entries {
                let key = match k {
                    Yaml::String(s) | Yaml::Real(s) => s,
                    Yaml::Integer(i) => i.to_string(),
                    Yaml::Boolean(b) => b.to_string(),
                    _ => return Err("a YAML mapping key that is not a plain value".into()),
                };
                obj.insert(key, value(v, depth + 1)?);
            }
            Value::Object(obj)
        }
        Yaml::Alias(_) => return Err("a YAML alias (bulk-audit does not follow them)".into()),
        Yaml::BadValue => return Err("an unreadable YAML value".into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn yaml_reads_as_the_same_json() {
        let doc = "resourceType: Observation\nid: >-\n  o1\nmeta:\n  versionId: '130'\n  lastUpdated: 2022-12-06T08:00:01.654321Z\n  tenant: {id: my-clinic, resourceType: Tenant}\nvalue: {Quantity: {value: 16.5, unit: '/min'}}\nflag: true\ncount: 3\n";
        assert_eq!(
            to_json(doc).unwrap(),
            json!({"resourceType": "Observation", "id": "o1", "meta": {"versionId": "130", "lastUpdated": "2022-12-06T08:00:01.654321Z", "tenant": {"id": "my-clinic", "resourceType": "Tenant"}}, "value": {"Quantity": {"value": 16.5, "unit": "/min"}}, "flag": true, "count": 3})
        );
        assert!(to_json("a: [1, 2").is_err());
        // Nesting that would exhaust the stack is refused, as serde_json refuses deep JSON.
        let deep: String = (1..2000).map(|i| format!("{}- \n", "  ".repeat(i))).collect();
        assert!(to_json(&format!("a:\n{deep}")).unwrap_err().1.contains("nested deeper than 128"));
        let flow = format!("a: {}", "[".repeat(200_000));
        assert!(to_json(&flow).unwrap_err().1.contains("nested deeper than 128"));
        let within: String = (1..130).map(|i| format!("{}- \n", "  ".repeat(i))).collect();
        assert!(to_json(&format!("a:\n{within}")).unwrap_err().1.contains("nested deeper than 128"));
    }

    #[test]
    fn documents_split_at_markers() {
        let text = "---\na: 1\n---\nb: 2\n\n--- \nc: 3\n";
        let docs = documents(text);
        assert_eq!(
            docs.iter().map(|d| (d.line, d.text.trim())).collect::<Vec<_>>(),
            vec![(2, "a: 1"), (4, "b: 2"), (7, "c: 3")]
        );
        assert_eq!(&text[docs[1].offset..docs[1].offset + 4], "b: 2");
    }
}
