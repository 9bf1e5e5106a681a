//! RBAC objects as the apiserver admits them: defaults (a subject's and a roleRef's
//! apiGroup), validation (pkg/apis/rbac/validation: rules, roleRefs, subjects, roleRef
//! immutable), and the ClusterRole aggregation kube-controller-manager runs (a ClusterRole
//! with an `aggregationRule` gets the rules of every ClusterRole its selectors match:
//! `admin`, `edit` and `view` are built that way).

use std::sync::Arc;

use serde_json::{json, Value};

use crate::error::{ApiError, Cause};
use crate::registry::ResourceDef;
use crate::selector::LabelSelector;
use crate::store::Part;
use crate::Shared;

use super::RBAC_GROUP;

/// Fill the defaults of a Role, ClusterRole or binding being written.
pub fn default(def: &ResourceDef, obj: &mut Value) {
    if !def.kind.ends_with("Binding") {
        return;
    }
    if obj["roleRef"].is_object()
        && obj["roleRef"]["apiGroup"]
            .as_str()
            .is_none_or(str::is_empty)
    {
        obj["roleRef"]["apiGroup"] = json!(RBAC_GROUP);
    }
    if let Some(subjects) = obj["subjects"].as_array_mut() {
        for s in subjects.iter_mut().filter(|s| s.is_object()) {
            if s["apiGroup"].as_str().is_none_or(str::is_empty) {
                match s["kind"].as_str() {
                    Some("User" | "Group") => s["apiGroup"] = json!(RBAC_GROUP),
                    Some("ServiceAccount") => s["apiGroup"] = json!(""),
                    _ => {}
                }
            }
        }
    }
}

fn cause(reason: &str, field: String, message: String) -> Cause {
    Cause {
        reason: reason.into(),
        message,
        field,
    }
}

fn required(field: String, detail: &str) -> Cause {
    let message = if detail.is_empty() {
        "Required value".to_string()
    } else {
        format!("Required value: {detail}")
    };
    cause("FieldValueRequired", field, message)
}

fn not_supported(field: String, value: &str, supported: &[&str]) -> Cause {
    let quoted: Vec<String> = supported.iter().map(|s| format!("\"{s}\"")).collect();
    cause(
        "FieldValueNotSupported",
        field,
        format!(
            "Unsupported value: \"{value}\": supported values: {}",
            quoted.join(", ")
        ),
    )
}

fn len(v: &Value) -> usize {
    v.as_array().map_or(0, Vec::len)
}

/// Go's `%#v` of a []string: `[]string{"/a", "/b"}`.
fn go_strings(v: &Value) -> String {
    let items: Vec<String> = v
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| format!("\"{}\"", s.as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    format!("[]string{{{}}}", items.join(", "))
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or("")
}

fn policy_rule(rule: &Value, namespaced: bool, path: &str, out: &mut Vec<Cause>) {
    if len(&rule["verbs"]) == 0 {
        out.push(required(
            format!("{path}.verbs"),
            "verbs must contain at least one value",
        ));
    }
    if len(&rule["nonResourceURLs"]) > 0 {
        let urls = go_strings(&rule["nonResourceURLs"]);
        if namespaced {
            out.push(cause(
                "FieldValueInvalid",
                format!("{path}.nonResourceURLs"),
                format!(
                    "Invalid value: {urls}: namespaced rules cannot apply to non-resource URLs"
                ),
            ));
        }
        if len(&rule["apiGroups"]) > 0
            || len(&rule["resources"]) > 0
            || len(&rule["resourceNames"]) > 0
        {
            out.push(cause(
                "FieldValueInvalid",
                format!("{path}.nonResourceURLs"),
                format!("Invalid value: {urls}: rules cannot apply to both regular resources and non-resource URLs"),
            ));
        }
        return;
    }
    if len(&rule["apiGroups"]) == 0 {
        out.push(required(
            format!("{path}.apiGroups"),
            "resource rules must supply at least one api group",
        ));
    }
    if len(&rule["resources"]) == 0 {
        out.push(required(
            format!("{path}.resources"),
            "resource rules must supply at least one resource",
        ));
    }
    if len(&rule["resourceNames"]) > 0 && len(&rule["resources"]) > 1 {
        out.push(required(
            format!("{path}.resourceNames"),
            "resource names cannot apply to multiple resources",
        ));
    }
}

fn subject(sub: &Value, namespaced: bool, path: &str, out: &mut Vec<Cause>) {
    let name = s(sub, "name");
    if name.is_empty() {
        out.push(required(format!("{path}.name"), ""));
    }
    let group = s(sub, "apiGroup");
    match s(sub, "kind") {
        "ServiceAccount" => {
            if !group.is_empty() {
                out.push(not_supported(format!("{path}.apiGroup"), group, &[""]));
            }
            if !namespaced && s(sub, "namespace").is_empty() {
                out.push(required(format!("{path}.namespace"), ""));
            }
        }
        "User" | "Group" => {
            if group != RBAC_GROUP {
                out.push(not_supported(
                    format!("{path}.apiGroup"),
                    group,
                    &[RBAC_GROUP],
                ));
            }
        }
        other => out.push(not_supported(
            format!("{path}.kind"),
            other,
            &["ServiceAccount", "User", "Group"],
        )),
    }
}

/// Go's `%#v` of a RoleRef, as `cannot change roleRef` prints it.
fn go_role_ref(r: &Value) -> String {
    format!(
        "rbac.RoleRef{{APIGroup:\"{}\", Kind:\"{}\", Name:\"{}\"}}",
        s(r, "apiGroup"),
        s(r, "kind"),
        s(r, "name")
    )
}

/// Validate a Role, ClusterRole or binding being created (`old` None) or updated.
pub fn validate(def: &ResourceDef, new: &Value, old: Option<&Value>) -> Result<(), ApiError> {
    let mut causes = vec![];
    let namespaced = def.namespaced;
    if def.kind.ends_with("Binding") {
        let r = &new["roleRef"];
        if s(r, "apiGroup") != RBAC_GROUP {
            causes.push(not_supported(
                "roleRef.apiGroup".into(),
                s(r, "apiGroup"),
                &[RBAC_GROUP],
            ));
        }
        let kinds: &[&str] = if namespaced {
            &["Role", "ClusterRole"]
        } else {
            &["ClusterRole"]
        };
        if !kinds.contains(&s(r, "kind")) {
            causes.push(not_supported("roleRef.kind".into(), s(r, "kind"), kinds));
        }
        if s(r, "name").is_empty() {
            causes.push(required("roleRef.name".into(), ""));
        }
        if let Some(subjects) = new["subjects"].as_array() {
            for (i, sub) in subjects.iter().enumerate() {
                subject(sub, namespaced, &format!("subjects[{i}]"), &mut causes);
            }
        }
        if let Some(old) = old {
            if old["roleRef"] != new["roleRef"] {
                causes.push(cause(
                    "FieldValueInvalid",
                    "roleRef".into(),
                    format!("Invalid value: {}: cannot change roleRef", go_role_ref(r)),
                ));
            }
        }
    } else {
        if let Some(rules) = new["rules"].as_array() {
            for (i, rule) in rules.iter().enumerate() {
                policy_rule(rule, namespaced, &format!("rules[{i}]"), &mut causes);
            }
        }
        if new["aggregationRule"].is_object()
            && len(&new["aggregationRule"]["clusterRoleSelectors"]) == 0
        {
            causes.push(required(
                "aggregationRule.clusterRoleSelectors".into(),
                "at least one clusterRoleSelector required if aggregationRule is non-nil",
            ));
        }
    }
    if causes.is_empty() {
        return Ok(());
    }
    let name = new["metadata"]["name"].as_str().unwrap_or("");
    Err(ApiError::invalid(&def.group, &def.kind, name, causes))
}

/// A JSON LabelSelector (matchLabels, matchExpressions) in the string syntax.
fn selector_of(sel: &Value) -> Option<LabelSelector> {
    let mut terms = vec![];
    if let Some(m) = sel["matchLabels"].as_object() {
        for (k, v) in m {
            terms.push(format!("{k}={}", v.as_str().unwrap_or("")));
        }
    }
    if let Some(exprs) = sel["matchExpressions"].as_array() {
        for e in exprs {
            let key = s(e, "key");
            let values: Vec<&str> = e["values"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            terms.push(match s(e, "operator") {
                "In" => format!("{key} in ({})", values.join(",")),
                "NotIn" => format!("{key} notin ({})", values.join(",")),
                "Exists" => key.to_string(),
                "DoesNotExist" => format!("!{key}"),
                _ => return None,
            });
        }
    }
    LabelSelector::parse(&terms.join(",")).ok()
}

/// One pass of the aggregation controller: every aggregated ClusterRole gets the rules of
/// the ClusterRoles its selectors match (by name, each rule once). Returns whether any
/// changed.
pub fn aggregate_once(shared: &Shared) -> bool {
    let Some(def) = shared.registry.find_kind(RBAC_GROUP, "ClusterRole") else {
        return false;
    };
    let (roles, _) = shared.store.list(def, None, None);
    let mut changed = false;
    for role in roles.iter().filter(|r| r["aggregationRule"].is_object()) {
        let name = s(&role["metadata"], "name");
        let mut rules: Vec<Value> = vec![];
        let empty = vec![];
        for sel in role["aggregationRule"]["clusterRoleSelectors"]
            .as_array()
            .unwrap_or(&empty)
        {
            let Some(sel) = selector_of(sel) else {
                continue;
            };
            // NB: the store lists by name, as the controller sorts them.
            for other in roles
                .iter()
                .filter(|o| sel.matches(o) && s(&o["metadata"], "name") != name)
            {
                for rule in other["rules"].as_array().unwrap_or(&empty) {
                    if !rules.contains(rule) {
                        rules.push(rule.clone());
                    }
                }
            }
        }
        let current = role["rules"].as_array().cloned().unwrap_or_default();
        if current == rules {
            continue;
        }
        let rules = Value::Array(rules);
        let written = shared
            .store
            .modify(def, "", name, Part::Main, false, |cur| {
                let mut new = cur.clone();
                new["rules"] = rules;
                Ok(new)
            });
        changed |= written.is_ok();
    }
    changed
}

/// Aggregate until nothing changes (`view` feeds `edit`, which feeds `admin`).
pub fn aggregate(shared: &Shared) {
    for _ in 0..8 {
        if !aggregate_once(shared) {
            return;
        }
    }
}

/// The aggregation controller: aggregate again whenever a ClusterRole changes.
pub async fn run_aggregation(shared: Arc<Shared>) {
    let mut rx = shared.store.subscribe();
    let key = format!("clusterroles.{RBAC_GROUP}");
    aggregate(&shared);
    loop {
        match rx.recv().await {
            Ok(change) if change.type_key == key => aggregate(&shared),
            Ok(_) => {}
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => aggregate(&shared),
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;

    fn def(kind: &str) -> ResourceDef {
        Registry::builtin()
            .find_kind(RBAC_GROUP, kind)
            .unwrap()
            .clone()
    }

    #[test]
    fn bindings_get_their_api_groups_defaulted() {
        let mut rb = json!({"metadata": {"name": "b"}, "roleRef": {"kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "User", "name": "alice"}, {"kind": "ServiceAccount", "name": "sa"}]});
        default(&def("RoleBinding"), &mut rb);
        assert_eq!(rb["roleRef"]["apiGroup"], RBAC_GROUP);
        assert_eq!(rb["subjects"][0]["apiGroup"], RBAC_GROUP);
        assert_eq!(rb["subjects"][1]["apiGroup"], "");
        validate(&def("RoleBinding"), &rb, None).unwrap();
    }

    #[test]
    fn invalid_rules_and_bindings_are_refused_in_the_apiservers_words() {
        let role = json!({"metadata": {"name": "r"}, "rules": [{"verbs": ["get"], "nonResourceURLs": ["/x"]}]});
        let e = validate(&def("Role"), &role, None).unwrap_err();
        assert_eq!(e.code, 422);
        assert_eq!(e.message, "Role.rbac.authorization.k8s.io \"r\" is invalid: rules[0].nonResourceURLs: Invalid value: []string{\"/x\"}: namespaced rules cannot apply to non-resource URLs");
        let crb = json!({"metadata": {"name": "b"}, "roleRef": {"apiGroup": RBAC_GROUP, "kind": "Role", "name": "x"},
            "subjects": [{"kind": "ServiceAccount", "name": "sa"}]});
        let e = validate(&def("ClusterRoleBinding"), &crb, None).unwrap_err();
        assert_eq!(e.message, "ClusterRoleBinding.rbac.authorization.k8s.io \"b\" is invalid: [roleRef.kind: Unsupported value: \"Role\": supported values: \"ClusterRole\", subjects[0].namespace: Required value]");
        let old = json!({"metadata": {"name": "b"}, "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": "view"}});
        let mut new = old.clone();
        new["roleRef"]["name"] = json!("edit");
        let e = validate(&def("ClusterRoleBinding"), &new, Some(&old)).unwrap_err();
        assert!(e.message.ends_with("roleRef: Invalid value: rbac.RoleRef{APIGroup:\"rbac.authorization.k8s.io\", Kind:\"ClusterRole\", Name:\"edit\"}: cannot change roleRef"), "{}", e.message);
    }
}
