//! The default ClusterRoles and ClusterRoleBindings every cluster starts with
//! (`data/rbac-bootstrap.yaml`): cluster-admin for `system:masters`; discovery,
//! basic-user (the self reviews) and public-info-viewer for every authenticated user,
//! public-info-viewer also for anonymous; admin, edit and view, aggregated.

use serde::Deserialize;
use serde_json::{json, Value};

use crate::Shared;

use super::RBAC_GROUP;

const BOOTSTRAP_YAML: &str = include_str!("../../data/rbac-bootstrap.yaml");

/// The bootstrap objects, with the labels and annotation kube-apiserver gives them.
pub fn objects() -> Vec<Value> {
    serde_yaml::Deserializer::from_str(BOOTSTRAP_YAML)
        .filter_map(|doc| Value::deserialize(doc).ok())
        .filter(Value::is_object)
        .map(|mut o| {
            o["apiVersion"] = json!(format!("{RBAC_GROUP}/v1"));
            o["metadata"]["labels"]["kubernetes.io/bootstrapping"] = json!("rbac-defaults");
            o["metadata"]["annotations"]["rbac.authorization.kubernetes.io/autoupdate"] =
                json!("true");
            o
        })
        .collect()
}

/// Store the bootstrap policy and aggregate `admin`, `edit` and `view`.
pub fn load(shared: &Shared) {
    for obj in objects() {
        let kind = obj["kind"].as_str().unwrap_or("").to_string();
        let Some(def) = shared.registry.find_kind(RBAC_GROUP, &kind) else {
            continue;
        };
        let mut obj = obj;
        super::objects::default(def, &mut obj);
        let stored = super::objects::validate(def, &obj, None)
            .and_then(|_| shared.store.create(def, "", obj, false));
        debug_assert!(stored.is_ok(), "bootstrap {kind}: {stored:?}");
    }
    super::objects::aggregate(shared);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bootstrap_policy_parses_and_binds_the_default_groups() {
        let objs = objects();
        let names: Vec<(&str, &str)> = objs
            .iter()
            .map(|o| {
                (
                    o["kind"].as_str().unwrap(),
                    o["metadata"]["name"].as_str().unwrap(),
                )
            })
            .collect();
        for want in [
            ("ClusterRole", "cluster-admin"),
            ("ClusterRole", "view"),
            ("ClusterRole", "system:basic-user"),
            ("ClusterRole", "system:discovery"),
            ("ClusterRole", "system:public-info-viewer"),
            ("ClusterRoleBinding", "cluster-admin"),
            ("ClusterRoleBinding", "system:basic-user"),
            ("ClusterRoleBinding", "system:discovery"),
            ("ClusterRoleBinding", "system:public-info-viewer"),
        ] {
            assert!(names.contains(&want), "{want:?} in {names:?}");
        }
        let public = objs
            .iter()
            .find(|o| {
                o["kind"] == "ClusterRoleBinding"
                    && o["metadata"]["name"] == "system:public-info-viewer"
            })
            .unwrap();
        assert_eq!(public["subjects"][1]["name"], "system:unauthenticated");
    }
}
