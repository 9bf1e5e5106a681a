//! The plugin in a pod: with no kubeconfig and a service account mounted (as the kubelet
//! mounts it, emulated with a mount namespace), it connects as that service account, in
//! its namespace, subject to RBAC, as client-go's in-cluster config does.

mod cli_support;

use cli_support::{Env, BIN};

const ROTATOR: &str = include_str!("../rbac/kubectl-rotate-rotator.yaml");

#[test]
fn in_a_pod_the_plugin_is_its_service_account_in_its_namespace() {
    let env = Env::demo();
    env.sb.apply_yaml(ROTATOR).unwrap();
    let sa = "system:serviceaccount:demo:rotator";
    env.sb
        .bind(sa, "ClusterRole", "kubectl-rotate-rotator", Some("demo"))
        .expect("bound");
    // No -n: the namespace is the pod's; no --yes needed for one database.
    let out = env.in_cluster("demo", "rotator", BIN, &["auth", "pg/pg-demo", "--wait"]);
    out.expect(0);
    assert!(out.stdout.contains("Successful"), "{}", out.stdout);
    let ops = env.ops_requests("postgresopsrequests");
    assert_eq!(
        ops[0]["metadata"]["annotations"]["rotate.kubectl.dev/user"], sa,
        "recorded as the service account the server authenticated"
    );
    let users: Vec<String> = env
        .sb
        .faults()
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.contains("opsrequests"))
        .filter_map(|r| r.user)
        .collect();
    assert_eq!(users, [sa]);
    // Its role is in demo only: elsewhere it is refused, before anything is written.
    let before = env.writes();
    let out = env.in_cluster(
        "demo",
        "rotator",
        BIN,
        &["auth", "pg/pg-demo", "-n", "default", "--wait"],
    );
    assert_ne!(out.code, 0);
    assert!(
        out.stderr.contains("system:serviceaccount:demo:rotator")
            && out.stderr.contains("forbidden"),
        "{}",
        out.stderr
    );
    assert_eq!(env.writes(), before);
}
