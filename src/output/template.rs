//! The template formats, `-o jsonpath=`, `-o jsonpath-as-json=` and `-o custom-columns=`:
//! the verb prints its `-o json` document(s), and they are read back and reshaped here.

use std::io::Write;

use serde_json::Value;

use super::jsonpath::{self, Template};
use super::table::{self, NONE};
use crate::cli::Output;
use crate::error::{Error, Result};

/// A template format, parsed.
#[derive(Debug, Clone)]
pub enum Reshape {
    /// `jsonpath=`: the template's text.
    JsonPath(Template),
    /// `jsonpath-as-json=`: the template's matches as a JSON list.
    AsJson(Template),
    /// `custom-columns=`: one row per item, a column per `HEADER:PATH`.
    Columns(Vec<(String, Template)>),
}

impl Reshape {
    /// The template of `-o`, if it has one: one that does not parse is a usage error,
    /// found before the kubeconfig is read.
    pub fn of(output: &Output) -> Result<Option<Reshape>> {
        let usage = |e: jsonpath::ParseError| Error::Usage(e.0);
        Ok(Some(match output {
            Output::Format(_) => return Ok(None),
            Output::JsonPath(t) => Reshape::JsonPath(Template::parse(t).map_err(usage)?),
            Output::JsonPathAsJson(t) => Reshape::AsJson(Template::parse(t).map_err(usage)?),
            Output::CustomColumns(spec) => Reshape::Columns(columns(spec)?),
        }))
    }

    /// Prints `json`, what the verb printed with `-o json` (one document or several), reshaped.
    pub fn print(&self, json: &[u8], no_headers: bool, out: &mut dyn Write) -> Result<()> {
        let docs = serde_json::Deserializer::from_slice(json)
            .into_iter::<Value>()
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::Unexpected(format!("reading back the JSON output: {e}")))?;
        for doc in &docs {
            match self {
                Reshape::JsonPath(t) => write!(out, "{}", t.render(doc))?,
                Reshape::AsJson(t) => {
                    let v = Value::Array(t.values(doc));
                    let text = serde_json::to_string_pretty(&v)
                        .map_err(|e| Error::Unexpected(e.to_string()))?;
                    writeln!(out, "{text}")?;
                }
                Reshape::Columns(cols) => {
                    let items: Vec<&Value> = match doc.get("items") {
                        Some(Value::Array(items)) => items.iter().collect(),
                        _ => vec![doc],
                    };
                    let rows: Vec<Vec<String>> = items
                        .iter()
                        .map(|item| cols.iter().map(|(_, t)| cell(t, item)).collect())
                        .collect();
                    let headers: Vec<&str> = cols.iter().map(|(h, _)| h.as_str()).collect();
                    table::write_with(out, &headers, &rows, !no_headers)?;
                }
            }
        }
        Ok(())
    }
}

/// A custom-columns cell: the matches joined by commas, `<none>` when there is none.
fn cell(t: &Template, item: &Value) -> String {
    let values = t.values(item);
    if values.is_empty() {
        return NONE.into();
    }
    values
        .iter()
        .map(jsonpath::text)
        .collect::<Vec<_>>()
        .join(",")
}

/// `HEADER:PATH,...`, split as kubectl splits it (on every comma).
fn columns(spec: &str) -> Result<Vec<(String, Template)>> {
    if spec.trim().is_empty() {
        return Err(Error::Usage(
            "custom-columns format specified but no custom columns given".into(),
        ));
    }
    spec.split(',')
        .map(|part| {
            let bad = || {
                Error::Usage(format!(
                    "unexpected custom-columns spec: {part}, expected <header>:<json-path-expr>"
                ))
            };
            let (header, path) = part.split_once(':').ok_or_else(bad)?;
            if header.is_empty() || path.is_empty() {
                return Err(bad());
            }
            let t = jsonpath::relaxed(path).map_err(|e| Error::Usage(e.0))?;
            Ok((header.to_string(), t))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn print(output: Output, json: &str, no_headers: bool) -> String {
        let r = Reshape::of(&output).unwrap().unwrap();
        let mut out = Vec::new();
        r.print(json.as_bytes(), no_headers, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    const LIST: &str = r#"{"kind": "List", "items": [
        {"metadata": {"name": "a"}, "ready": true},
        {"metadata": {"name": "bb"}, "tags": ["x", "y"]}]}"#;

    #[test]
    fn custom_columns_print_a_row_per_item_and_none_when_missing() {
        let spec = "NAME:.metadata.name,READY:.ready,TAGS:{.tags[*]}";
        assert_eq!(
            print(Output::CustomColumns(spec.into()), LIST, false),
            "NAME   READY    TAGS\na      true     <none>\nbb     <none>   x,y\n"
        );
        assert_eq!(
            print(Output::CustomColumns(spec.into()), LIST, true),
            "a    true     <none>\nbb   <none>   x,y\n"
        );
        assert_eq!(
            print(
                Output::CustomColumns("N:metadata.name".into()),
                r#"{"metadata": {"name": "one"}}"#,
                false
            ),
            "N\none\n"
        );
    }

    #[test]
    fn jsonpath_applies_to_each_document_printed() {
        assert_eq!(
            print(
                Output::JsonPath("{.items[*].metadata.name}".into()),
                LIST,
                false
            ),
            "a bb"
        );
        assert_eq!(
            print(
                Output::JsonPath("{.k}{\"\\n\"}".into()),
                "{\"k\": 1}\n{\"k\": 2}\n",
                false
            ),
            "1\n2\n"
        );
        let v: Value = serde_json::from_str(&print(
            Output::JsonPathAsJson("{.items[*].metadata.name}".into()),
            LIST,
            false,
        ))
        .unwrap();
        assert_eq!(v, serde_json::json!(["a", "bb"]));
    }

    #[test]
    fn bad_specs_are_usage_errors() {
        for o in [
            Output::CustomColumns("NAME".into()),
            Output::CustomColumns(":.a".into()),
            Output::CustomColumns("A:.a[".into()),
            Output::JsonPath("{.a".into()),
        ] {
            let e = Reshape::of(&o).expect_err("refused");
            assert_eq!(e.exit_code(), 2, "{o:?}");
            assert!(!e.to_string().contains('\n'), "{e}");
        }
    }
}
