//! Label selectors (`a=b,c!=d,e in (x,y),f notin (z),g,!h`) and simple field selectors
//! (`metadata.name=x,involvedObject.kind!=Pod`), as the apiserver parses them.

use serde_json::Value;

use crate::error::ApiError;

use rotate_selector::Requirement;

/// A parsed label selector.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LabelSelector(Vec<Requirement>);

impl LabelSelector {
    /// Parse; an empty string selects everything.
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        rotate_selector::parse(s).map(LabelSelector).map_err(|e| {
            ApiError::bad_request(format!(
                "unable to parse requirement: found '{}', expected: in, notin, =, ==, !=, gt, lt",
                e.requirement
            ))
        })
    }

    /// Does an object's `metadata.labels` match?
    pub fn matches(&self, obj: &Value) -> bool {
        let labels = obj.get("metadata").and_then(|m| m.get("labels"));
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.0.iter().all(|r| r.matches(get))
    }

    /// Selects everything?
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A parsed field selector: equality and inequality on dotted paths.
#[derive(Clone, Debug, Default)]
pub struct FieldSelector(Vec<(String, bool, String)>);

impl FieldSelector {
    /// Parse; an empty string selects everything.
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        let mut out = vec![];
        for p in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if let Some((k, v)) = p.split_once("!=") {
                out.push((k.into(), false, v.into()));
            } else if let Some((k, v)) = p.split_once("==").or_else(|| p.split_once('=')) {
                out.push((k.into(), true, v.into()));
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid selector: '{p}'; can't understand '{p}'"
                )));
            }
        }
        Ok(FieldSelector(out))
    }

    /// Does the object match?
    pub fn matches(&self, obj: &Value) -> bool {
        self.0.iter().all(|(path, eq, want)| {
            let mut cur = obj;
            for seg in path.split('.') {
                match cur.get(seg) {
                    Some(v) => cur = v,
                    None => {
                        cur = &Value::Null;
                        break;
                    }
                }
            }
            let got = match cur {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            (got == *want) == *eq
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn set_based_and_equality_requirements_combine() {
        let o = json!({"metadata": {"labels": {"team": "a", "tier": "db"}}});
        for (sel, want) in [
            ("team=a", true),
            ("team==a,tier!=web", true),
            ("team in (a,b)", true),
            ("team notin (a)", false),
            ("tier", true),
            ("!tier", false),
            ("team in (b, c),tier", false),
            ("", true),
        ] {
            assert_eq!(
                LabelSelector::parse(sel).unwrap().matches(&o),
                want,
                "{sel}"
            );
        }
        assert!(LabelSelector::parse("team in a").is_err());
    }

    #[test]
    fn field_selectors_compare_dotted_paths() {
        let o = json!({"metadata": {"name": "x"}, "involvedObject": {"kind": "Pod"}});
        assert!(
            FieldSelector::parse("metadata.name=x,involvedObject.kind!=Node")
                .unwrap()
                .matches(&o)
        );
        assert!(!FieldSelector::parse("metadata.name=y").unwrap().matches(&o));
    }
}
