//! Who the server says we are, and whether it lets us do what a command will do: asked
//! before the first write (SelfSubjectAccessReview, as `kubectl auth can-i`), so that a
//! missing permission stops a rotation before it starts instead of halfway through.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, ResourceRule, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
    SelfSubjectRulesReview, SelfSubjectRulesReviewSpec,
};
use kube::api::{Api, PostParams};
use tokio::sync::OnceCell;

use super::concurrently;
use crate::context::Ctx;
use crate::error::{Error, Result};

/// How many reviews are in flight at once.
const PARALLEL: usize = 8;

/// One permission a command needs: `verb` on `resource` (`plural.group`, or `plural`
/// for the core group, with an optional `/subresource`) in `namespace`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Need {
    /// get, list, watch, create, update, patch, delete.
    pub verb: &'static str,
    /// The API group; "" for the core group.
    pub group: &'static str,
    /// The resource's plural.
    pub resource: &'static str,
    /// e.g. `portforward` for `pods/portforward`.
    pub subresource: Option<&'static str>,
    /// The namespace it is done in.
    pub namespace: String,
    /// The object, when the verb names one (get, update, patch).
    pub name: Option<String>,
}

impl Need {
    /// `verb` on `group`'s `resource` in `namespace`, any object.
    pub fn new(verb: &'static str, group: &'static str, resource: &'static str, ns: &str) -> Need {
        Need {
            verb,
            group,
            resource,
            subresource: None,
            namespace: ns.to_string(),
            name: None,
        }
    }

    /// The same, on the object `name` only.
    pub fn named(mut self, name: &str) -> Need {
        self.name = Some(name.to_string());
        self
    }

    /// The same, on a subresource.
    pub fn on_subresource(mut self, subresource: &'static str) -> Need {
        self.subresource = Some(subresource);
        self
    }

    /// `plural.group/sub`, as `kubectl auth can-i` takes it.
    fn resource_arg(&self) -> String {
        let mut r = match self.group {
            "" => self.resource.to_string(),
            g => format!("{}.{g}", self.resource),
        };
        if let Some(s) = self.subresource {
            r.push('/');
            r.push_str(s);
        }
        r
    }

    /// The `kubectl auth can-i` command that asks the same question.
    pub fn can_i(&self) -> String {
        let name = self
            .name
            .as_ref()
            .map(|n| format!("/{n}"))
            .unwrap_or_default();
        format!(
            "kubectl auth can-i {} {}{name} -n {}",
            self.verb,
            self.resource_arg(),
            self.namespace
        )
    }
}

impl fmt::Display for Need {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.verb, self.resource_arg())?;
        if let Some(n) = &self.name {
            write!(f, " {n:?}")?;
        }
        write!(f, " in namespace {:?}", self.namespace)
    }
}

/// What the server answered about a permission.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    Denied,
    /// The server cannot be asked (no SelfSubjectAccessReview API, or not allowed to ask):
    /// the command goes on and the write itself will tell.
    Unknown,
}

/// Asks the server whether it allows `need`.
async fn review(ctx: &Ctx, need: &Need) -> Result<Verdict> {
    let api: Api<SelfSubjectAccessReview> = Api::all(ctx.client.clone());
    let ssar = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                verb: Some(need.verb.into()),
                group: Some(need.group.into()),
                resource: Some(need.resource.into()),
                subresource: need.subresource.map(Into::into),
                namespace: Some(need.namespace.clone()),
                name: need.name.clone(),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    // NB: a review writes nothing, so a lost answer is simply asked again.
    let pp = PostParams::default();
    match super::retry(|| api.create(&pp, &ssar)).await {
        Ok(r) => Ok(match r.status {
            Some(s) if s.allowed => Verdict::Allowed,
            Some(_) => Verdict::Denied,
            None => Verdict::Unknown,
        }),
        Err(kube::Error::Api(s)) if matches!(s.code, 403..=405) => Ok(Verdict::Unknown),
        Err(e) => Err(Error::api("create selfsubjectaccessreview", e)),
    }
}

/// The server's verdicts for one command. Each namespace's rules are read once
/// (SelfSubjectRulesReview, as `kubectl auth can-i --list`): one request however many
/// targets and permissions. What the rules allow is allowed; what they do not is denied,
/// unless the server says its list is incomplete (an authorizer besides RBAC), and then
/// that one permission is asked on its own (SelfSubjectAccessReview).
#[derive(Default)]
pub struct Permissions {
    rules: Mutex<HashMap<String, Arc<OnceCell<Option<Rules>>>>>,
}

/// A namespace's rules as the server listed them.
#[derive(Clone, Debug, Default)]
pub struct Rules {
    rules: Vec<ResourceRule>,
    incomplete: bool,
}

impl Rules {
    /// Whether a rule allows `need` (RBAC's matching: `*` for any verb, group or
    /// resource; `resource/subresource`; resourceNames only for a named object).
    pub fn allow(&self, need: &Need) -> bool {
        let resource = match need.subresource {
            Some(sub) => format!("{}/{sub}", need.resource),
            None => need.resource.to_string(),
        };
        let any = |list: &Option<Vec<String>>, want: &str| {
            list.as_ref()
                .is_some_and(|l| l.iter().any(|x| x == "*" || x == want))
        };
        self.rules.iter().any(|r| {
            r.verbs.iter().any(|v| v == "*" || v == need.verb)
                && any(&r.api_groups, need.group)
                && (any(&r.resources, &resource)
                    || (need.subresource.is_some()
                        && any(
                            &r.resources,
                            &format!("*/{}", need.subresource.unwrap_or("")),
                        )))
                && match r.resource_names.as_deref() {
                    None | Some([]) => true,
                    Some(names) => need.name.as_ref().is_some_and(|n| names.contains(n)),
                }
        })
    }
}

/// The rules of `ns`, or `None` when the server cannot list them.
async fn rules(ctx: &Ctx, ns: &str) -> Result<Option<Rules>> {
    let api: Api<SelfSubjectRulesReview> = Api::all(ctx.client.clone());
    let review = SelfSubjectRulesReview {
        spec: SelfSubjectRulesReviewSpec {
            namespace: Some(ns.to_string()),
        },
        ..Default::default()
    };
    let pp = PostParams::default();
    match super::retry(|| api.create(&pp, &review)).await {
        Ok(r) => Ok(r.status.map(|s| Rules {
            rules: s.resource_rules,
            incomplete: s.incomplete,
        })),
        Err(kube::Error::Api(s)) if matches!(s.code, 403..=405) => Ok(None),
        Err(e) => Err(Error::api("create selfsubjectrulesreview", e)),
    }
}

impl Permissions {
    /// Refuses, naming every permission of `needs` the server denies.
    pub async fn require(&self, ctx: &Ctx, needs: &[Need]) -> Result<()> {
        let mut namespaces: Vec<&str> = needs.iter().map(|n| n.namespace.as_str()).collect();
        namespaces.sort();
        namespaces.dedup();
        let cells: Vec<(String, Arc<OnceCell<Option<Rules>>>)> = {
            let mut known = self.rules.lock().unwrap_or_else(|e| e.into_inner());
            namespaces
                .iter()
                .map(|ns| {
                    (
                        ns.to_string(),
                        known.entry(ns.to_string()).or_default().clone(),
                    )
                })
                .collect()
        };
        let listed = concurrently(cells, PARALLEL, |(ns, cell)| async move {
            let r = cell.get_or_try_init(|| rules(ctx, &ns)).await.cloned();
            r.map(|r| (ns, r))
        })
        .await
        .into_iter()
        .collect::<Result<HashMap<String, Option<Rules>>>>()?;
        // NB: a server that cannot list the rules (no authorization API, or not allowed to
        // ask) cannot review a single permission either: the writes themselves will tell.
        let open: Vec<(&Need, &Rules)> = needs
            .iter()
            .filter_map(|n| {
                let r = listed.get(&n.namespace).and_then(Option::as_ref)?;
                (!r.allow(n)).then_some((n, r))
            })
            .collect();
        let asked = concurrently(open, PARALLEL, |(n, r)| async move {
            match r.incomplete {
                false => Ok((n, Verdict::Denied)),
                true => review(ctx, n).await.map(|v| (n, v)),
            }
        })
        .await;
        let mut missing = Vec::new();
        for a in asked {
            let (n, v) = a?;
            if v == Verdict::Denied {
                missing.push(n);
            }
        }
        match missing.first() {
            None => Ok(()),
            Some(first) => Err(Error::Forbidden {
                missing: missing.iter().map(|n| n.to_string()).collect(),
                can_i: first.can_i(),
            }),
        }
    }
}

/// Refuses, naming every permission of `needs` the server denies (a one-off check).
pub async fn require(ctx: &Ctx, needs: &[Need]) -> Result<()> {
    Permissions::default().require(ctx, needs).await
}

/// Who wrote it, for the records on what the plugin writes: the name the server
/// authenticated this client as ([`whoami`], asked once per command), else the
/// kubeconfig context's user name.
pub async fn user(ctx: &Ctx) -> Option<String> {
    ctx.identity
        .get_or_init(|| whoami(ctx))
        .await
        .clone()
        .or_else(|| ctx.user.clone())
}

/// The user name the server authenticated this client as (SelfSubjectReview, as
/// `kubectl auth whoami`), impersonation applied; `None` where the server cannot say.
async fn whoami(ctx: &Ctx) -> Option<String> {
    let api: Api<SelfSubjectReview> = Api::all(ctx.client.clone());
    let (review, pp) = (SelfSubjectReview::default(), PostParams::default());
    let answer = super::retry(|| api.create(&pp, &review)).await.ok()?;
    answer.status?.user_info?.username.filter(|u| !u.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(verbs: &[&str], groups: &[&str], resources: &[&str], names: &[&str]) -> ResourceRule {
        let v = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        ResourceRule {
            verbs: v(verbs),
            api_groups: Some(v(groups)),
            resources: Some(v(resources)),
            resource_names: Some(v(names)).filter(|n| !n.is_empty()),
        }
    }

    #[test]
    fn rules_match_as_rbac_does() {
        let rules = Rules {
            rules: vec![
                rule(
                    &["create"],
                    &["ops.kubedb.com"],
                    &["postgresopsrequests"],
                    &[],
                ),
                rule(
                    &["get", "update"],
                    &["coordination.k8s.io"],
                    &["leases"],
                    &["l1"],
                ),
                rule(&["create"], &[""], &["pods/portforward"], &[]),
                rule(&["*"], &["kubedb.com"], &["*"], &[]),
            ],
            incomplete: false,
        };
        let ops = Need::new("create", "ops.kubedb.com", "postgresopsrequests", "demo");
        assert!(rules.allow(&ops));
        assert!(!rules.allow(&Need {
            verb: "delete",
            ..ops.clone()
        }));
        let lease = Need::new("update", "coordination.k8s.io", "leases", "demo");
        assert!(rules.allow(&lease.clone().named("l1")));
        assert!(!rules.allow(&lease.clone().named("l2")));
        assert!(
            !rules.allow(&lease),
            "resourceNames never grant an unnamed request"
        );
        assert!(rules.allow(&Need::new("create", "", "pods", "demo").on_subresource("portforward")));
        assert!(!rules.allow(&Need::new("create", "", "pods", "demo")));
        assert!(rules.allow(&Need::new("patch", "kubedb.com", "postgreses", "demo")));
    }

    #[test]
    fn a_need_reads_as_kubectl_auth_can_i_asks_it() {
        let n = Need::new("create", "ops.kubedb.com", "postgresopsrequests", "demo");
        assert_eq!(
            n.to_string(),
            "create postgresopsrequests.ops.kubedb.com in namespace \"demo\""
        );
        assert_eq!(
            n.can_i(),
            "kubectl auth can-i create postgresopsrequests.ops.kubedb.com -n demo"
        );
        let p = Need::new("create", "", "pods", "demo").on_subresource("portforward");
        assert_eq!(
            p.can_i(),
            "kubectl auth can-i create pods/portforward -n demo"
        );
        let s = Need::new(
            "patch",
            "sql.arcdata.microsoft.com",
            "sqlmanagedinstances",
            "x",
        )
        .named("mi");
        assert_eq!(
            s.to_string(),
            "patch sqlmanagedinstances.sql.arcdata.microsoft.com \"mi\" in namespace \"x\""
        );
        assert_eq!(
            s.can_i(),
            "kubectl auth can-i patch sqlmanagedinstances.sql.arcdata.microsoft.com/mi -n x"
        );
    }
}
