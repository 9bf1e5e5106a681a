//! The RBAC authorizer, as kube-apiserver's (plugin/pkg/auth/authorizer/rbac): a request
//! is allowed when a rule of a role bound to its user allows it; nothing denies.
//!
//! The rules looked at are those of every ClusterRoleBinding whose subjects include the
//! user, then (for a request in a namespace) of every RoleBinding in that namespace; a
//! RoleBinding to a ClusterRole grants its rules in the binding's namespace only.
//! Subjects are a User by name, a Group the user is in, or a ServiceAccount (its
//! namespace defaulting to the binding's). A rule allows a resource request when its
//! verbs, apiGroups, resources (`resource/subresource`, `*`, `*/subresource`) and
//! resourceNames (empty = all) match; a non-resource request when its verbs and
//! nonResourceURLs (`*`, or a prefix ending in `*`) do. Members of `system:masters` are
//! allowed everything before RBAC is asked, as by kube-apiserver's privileged-groups
//! authorizer.
//!
//! The reasons are the authorizer's: `RBAC: allowed by RoleBinding "x/demo" of
//! ClusterRole "y" to User "alice"` when allowed; when not, none, or `RBAC: <errors>` when
//! a binding names a role that does not exist.

use serde_json::{json, Value};

use crate::Shared;

use super::{strings, Attributes, RequestInfo, UserInfo, RBAC_GROUP};

/// An authorization decision.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Decision {
    /// Allowed (RBAC never denies: not allowed is "no opinion", which refuses).
    pub allowed: bool,
    /// Why, in the authorizer's words; often empty.
    pub reason: String,
}

/// One rule of a Role or ClusterRole (rbac.authorization.k8s.io/v1 PolicyRule).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rule {
    /// Verbs, `*` for all.
    pub verbs: Vec<String>,
    /// API groups ("" core), `*` for all.
    pub api_groups: Vec<String>,
    /// Resources: `secrets`, `pods/portforward`, `*`, `*/status`.
    pub resources: Vec<String>,
    /// Object names; empty for all.
    pub resource_names: Vec<String>,
    /// Non-resource URLs: `/healthz`, `/api/*`, `*`.
    pub non_resource_urls: Vec<String>,
}

impl Rule {
    /// From its JSON form.
    pub fn from_json(v: &Value) -> Rule {
        Rule {
            verbs: strings(&v["verbs"]),
            api_groups: strings(&v["apiGroups"]),
            resources: strings(&v["resources"]),
            resource_names: strings(&v["resourceNames"]),
            non_resource_urls: strings(&v["nonResourceURLs"]),
        }
    }

    /// Its JSON form (empty lists but verbs left out, as Go's omitempty does).
    pub fn to_json(&self) -> Value {
        let mut m = serde_json::Map::new();
        m.insert("verbs".into(), json!(self.verbs));
        for (k, v) in [
            ("apiGroups", &self.api_groups),
            ("resources", &self.resources),
            ("resourceNames", &self.resource_names),
            ("nonResourceURLs", &self.non_resource_urls),
        ] {
            if !v.is_empty() {
                m.insert(k.into(), json!(v));
            }
        }
        Value::Object(m)
    }

    /// Whether this rule allows a request (RuleAllows).
    pub fn allows(&self, r: &RequestInfo) -> bool {
        let verb = self.verbs.iter().any(|v| v == "*" || *v == r.verb);
        if !r.resource_request {
            return verb
                && self.non_resource_urls.iter().any(|u| {
                    u == "*"
                        || *u == r.path
                        || u.strip_suffix('*')
                            .is_some_and(|prefix| r.path.starts_with(prefix))
                });
        }
        let combined = r.resource_and_subresource();
        verb && self
            .api_groups
            .iter()
            .any(|g| g == "*" || *g == r.api_group)
            && self.resources.iter().any(|res| {
                res == "*"
                    || *res == combined
                    || (!r.subresource.is_empty()
                        && res.strip_prefix("*/") == Some(r.subresource.as_str()))
            })
            && (self.resource_names.is_empty() || self.resource_names.contains(&r.name))
    }
}

/// The rules of a Role or ClusterRole object.
pub fn rules_of(role: &Value) -> Vec<Rule> {
    role["rules"]
        .as_array()
        .map(|a| a.iter().map(Rule::from_json).collect())
        .unwrap_or_default()
}

/// Whether a binding subject is this user (appliesToUser); `namespace` is the binding's
/// ("" for a ClusterRoleBinding), the default of a ServiceAccount subject's.
fn applies_to(user: &UserInfo, subject: &Value, namespace: &str) -> bool {
    let name = subject["name"].as_str().unwrap_or("");
    match subject["kind"].as_str().unwrap_or("") {
        "User" => user.name == name,
        "Group" => user.in_group(name),
        "ServiceAccount" => {
            let ns = subject["namespace"]
                .as_str()
                .filter(|n| !n.is_empty())
                .unwrap_or(namespace);
            !ns.is_empty() && user.name == super::service_account_user(ns, name)
        }
        _ => false,
    }
}

/// `User "alice"`, `Group "g"`, `ServiceAccount "name/ns"` (describeSubject).
fn describe_subject(subject: &Value, binding_namespace: &str) -> String {
    let kind = subject["kind"].as_str().unwrap_or("");
    let name = subject["name"].as_str().unwrap_or("");
    if kind == "ServiceAccount" {
        let ns = subject["namespace"]
            .as_str()
            .filter(|n| !n.is_empty())
            .unwrap_or(binding_namespace);
        format!("{kind} \"{name}/{ns}\"")
    } else {
        format!("{kind} \"{name}\"")
    }
}

/// What a visitor of rules is given: where the rule comes from, the rule, or an error
/// met while resolving a binding's role.
enum Visited<'a> {
    Rule(&'a str, &'a Rule),
    Error(String),
}

/// The rules of the role a binding refers to (GetRoleReferenceRules).
fn role_rules(shared: &Shared, role_ref: &Value, ns: &str) -> Result<Vec<Rule>, String> {
    let name = role_ref["name"].as_str().unwrap_or("");
    let (kind, role_ns, singular) = match role_ref["kind"].as_str().unwrap_or("") {
        "Role" => ("Role", ns, "role"),
        "ClusterRole" => ("ClusterRole", "", "clusterrole"),
        other => return Err(format!("unsupported role reference kind: \"{other}\"")),
    };
    let not_found = || format!("{singular}.{RBAC_GROUP} \"{name}\" not found");
    let def = shared
        .registry
        .find_kind(RBAC_GROUP, kind)
        .ok_or_else(not_found)?;
    shared
        .store
        .get(def, role_ns, name)
        .map(|r| rules_of(&r))
        .map_err(|_| not_found())
}

/// Visit every rule that applies to `user` in `namespace` until `visit` returns false
/// (VisitRulesFor): ClusterRoleBindings first, then the namespace's RoleBindings.
fn visit_rules(
    shared: &Shared,
    user: &UserInfo,
    namespace: &str,
    mut visit: impl FnMut(Visited) -> bool,
) {
    let reg = &shared.registry;
    let mut scopes = vec![("ClusterRoleBinding", None)];
    if !namespace.is_empty() {
        scopes.push(("RoleBinding", Some(namespace)));
    }
    for (kind, ns) in scopes {
        let Some(def) = reg.find_kind(RBAC_GROUP, kind) else {
            continue;
        };
        let (bindings, _) = shared.store.list(def, ns, None);
        for b in &bindings {
            let binding_ns = ns.unwrap_or("");
            let empty = vec![];
            let subjects = b["subjects"].as_array().unwrap_or(&empty);
            let Some(subject) = subjects.iter().find(|s| applies_to(user, s, binding_ns)) else {
                continue;
            };
            let rules = match role_rules(shared, &b["roleRef"], binding_ns) {
                Ok(r) => r,
                Err(e) => {
                    if !visit(Visited::Error(e)) {
                        return;
                    }
                    continue;
                }
            };
            let name = b["metadata"]["name"].as_str().unwrap_or("");
            let binding = if kind == "RoleBinding" {
                format!("{name}/{binding_ns}")
            } else {
                name.to_string()
            };
            let source = format!(
                "{kind} \"{binding}\" of {} \"{}\" to {}",
                b["roleRef"]["kind"].as_str().unwrap_or(""),
                b["roleRef"]["name"].as_str().unwrap_or(""),
                describe_subject(subject, binding_ns)
            );
            for rule in &rules {
                if !visit(Visited::Rule(&source, rule)) {
                    return;
                }
            }
        }
    }
}

/// Errors as utilerrors.NewAggregate prints them: one as it is, several deduplicated in
/// brackets.
fn aggregate(errors: &[String]) -> String {
    let mut seen: Vec<&String> = vec![];
    for e in errors {
        if !seen.contains(&e) {
            seen.push(e);
        }
    }
    match seen.as_slice() {
        [one] => one.to_string(),
        many => format!(
            "[{}]",
            many.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Decide a request, as kube-apiserver's authorizer chain does for it: `system:masters`,
/// then RBAC.
pub fn authorize(shared: &Shared, attrs: &Attributes) -> Decision {
    if attrs.user.is_master() {
        return Decision {
            allowed: true,
            reason: String::new(),
        };
    }
    let mut errors = vec![];
    let mut allowed_by = None;
    visit_rules(shared, &attrs.user, &attrs.request.namespace, |v| match v {
        Visited::Rule(source, rule) => {
            if rule.allows(&attrs.request) {
                allowed_by = Some(source.to_string());
                return false;
            }
            true
        }
        Visited::Error(e) => {
            errors.push(e);
            true
        }
    });
    match allowed_by {
        Some(source) => Decision {
            allowed: true,
            reason: format!("RBAC: allowed by {source}"),
        },
        None => Decision {
            allowed: false,
            reason: if errors.is_empty() {
                String::new()
            } else {
                format!("RBAC: {}", aggregate(&errors))
            },
        },
    }
}

/// Every rule that applies to `user` in `namespace`, and the errors met (RulesFor), for
/// SelfSubjectRulesReview.
pub fn rules_for(shared: &Shared, user: &UserInfo, namespace: &str) -> (Vec<Rule>, Option<String>) {
    let mut rules = vec![];
    let mut errors = vec![];
    visit_rules(shared, user, namespace, |v| {
        match v {
            Visited::Rule(_, rule) => rules.push(rule.clone()),
            Visited::Error(e) => errors.push(e),
        }
        true
    });
    let err = (!errors.is_empty()).then(|| aggregate(&errors));
    (rules, err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, path: &str) -> RequestInfo {
        RequestInfo::from_request(method, path, None)
    }

    fn rule(v: Value) -> Rule {
        Rule::from_json(&v)
    }

    #[test]
    fn rules_match_verbs_groups_resources_and_names() {
        let r = rule(
            json!({"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"], "resourceNames": ["a"]}),
        );
        assert!(r.allows(&req("GET", "/api/v1/namespaces/demo/secrets/a")));
        assert!(!r.allows(&req("GET", "/api/v1/namespaces/demo/secrets/b")));
        assert!(
            !r.allows(&req("GET", "/api/v1/namespaces/demo/secrets")),
            "a list has no name"
        );
        assert!(!r.allows(&req("DELETE", "/api/v1/namespaces/demo/secrets/a")));
        let all = rule(json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}));
        assert!(all.allows(&req(
            "PATCH",
            "/apis/kubedb.com/v1/namespaces/demo/postgreses/p/status"
        )));
        let status = rule(
            json!({"verbs": ["patch"], "apiGroups": ["kubedb.com"], "resources": ["*/status"]}),
        );
        assert!(status.allows(&req(
            "PATCH",
            "/apis/kubedb.com/v1/namespaces/demo/postgreses/p/status"
        )));
        assert!(!status.allows(&req(
            "PATCH",
            "/apis/kubedb.com/v1/namespaces/demo/postgreses/p"
        )));
        let main = rule(
            json!({"verbs": ["patch"], "apiGroups": ["kubedb.com"], "resources": ["postgreses"]}),
        );
        assert!(
            !main.allows(&req(
                "PATCH",
                "/apis/kubedb.com/v1/namespaces/demo/postgreses/p/status"
            )),
            "a subresource is named on its own"
        );
        let pf = rule(
            json!({"verbs": ["create"], "apiGroups": [""], "resources": ["pods/portforward"]}),
        );
        assert!(pf.allows(&req("POST", "/api/v1/namespaces/demo/pods/p/portforward")));
        assert!(!pf.allows(&req("GET", "/api/v1/namespaces/demo/pods/p/portforward")));
    }

    #[test]
    fn non_resource_urls_match_exactly_or_by_a_trailing_star() {
        let r = rule(json!({"verbs": ["get"], "nonResourceURLs": ["/api", "/apis/*", "/version"]}));
        assert!(r.allows(&req("GET", "/api")));
        assert!(r.allows(&req("GET", "/apis/kubedb.com/v1")));
        assert!(
            !r.allows(&req("GET", "/apis")),
            "/apis/* does not match /apis"
        );
        assert!(!r.allows(&req("GET", "/version/x")));
        assert!(!r.allows(&req("POST", "/api")));
        assert!(
            !r.allows(&req("GET", "/api/v1/namespaces/demo/secrets")),
            "a resource request"
        );
    }

    #[test]
    fn subjects_match_users_groups_and_service_accounts() {
        let alice = UserInfo::new("alice", &["team", "system:authenticated"]);
        assert!(applies_to(
            &alice,
            &json!({"kind": "User", "name": "alice"}),
            ""
        ));
        assert!(applies_to(
            &alice,
            &json!({"kind": "Group", "name": "team"}),
            ""
        ));
        assert!(!applies_to(
            &alice,
            &json!({"kind": "Group", "name": "alice"}),
            ""
        ));
        let sa = UserInfo::service_account("demo", "rotator");
        let subject = json!({"kind": "ServiceAccount", "name": "rotator"});
        assert!(applies_to(&sa, &subject, "demo"), "the binding's namespace");
        assert!(!applies_to(&sa, &subject, ""), "no namespace, no match");
        assert!(!applies_to(&sa, &subject, "other"));
        let subject = json!({"kind": "ServiceAccount", "name": "rotator", "namespace": "demo"});
        assert!(applies_to(&sa, &subject, "other"));
        assert_eq!(
            describe_subject(&subject, "other"),
            "ServiceAccount \"rotator/demo\""
        );
    }

    #[test]
    fn several_errors_are_aggregated_in_brackets() {
        let e = |s: &str| s.to_string();
        assert_eq!(aggregate(&[e("a")]), "a");
        assert_eq!(aggregate(&[e("a"), e("a")]), "a");
        assert_eq!(aggregate(&[e("a"), e("b"), e("a")]), "[a, b]");
    }
}
