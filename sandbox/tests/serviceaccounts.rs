//! ServiceAccounts and their tokens: real kubectl (`create serviceaccount`, `get sa`,
//! `create token`, `--token ... auth whoami|can-i`) and kube-rs against the sandbox, which
//! must answer as kube-apiserver 1.32 does: every namespace has a `default` ServiceAccount,
//! a TokenRequest answers a bound JWT, and that token authenticates the service account
//! until it expires or the ServiceAccount goes. kubectl from PATH or `$KUBECTL`.

use std::path::Path;
use std::time::{Duration, Instant};

use k8s_openapi::api::authentication::v1::{SelfSubjectReview, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::PostParams;
use rotate_sandbox::auth::jwt::unverified_claims;
use rotate_sandbox::auth::serviceaccounts::ISSUER;
use rotate_sandbox::{Options, SandboxHandle};
use serde_json::Value;

mod support;

use support::{ok, refused, run};

/// kubectl's words for a 401.
const UNAUTHORIZED: &str = "error: You must be logged in to the server (Unauthorized)\n";

/// A sandbox with the demo fixtures and the ServiceAccount `demo/ci`, made with kubectl.
fn with_ci() -> SandboxHandle {
    let sb = SandboxHandle::start(Options::demo()).unwrap();
    let out = ok(
        sb.kubeconfig_path(),
        &["create", "serviceaccount", "ci", "-n", "demo"],
    );
    assert_eq!(out, "serviceaccount/ci created\n");
    sb
}

/// `kubectl create token ci -n demo` with more arguments; the token.
fn create_token(sb: &SandboxHandle, extra: &[&str]) -> String {
    let args = [&["create", "token", "ci", "-n", "demo"], extra].concat();
    ok(sb.kubeconfig_path(), &args).trim_end().to_string()
}

/// kubectl as the admin's kubeconfig with `--token` (so as whoever the token is).
fn as_token(sb: &SandboxHandle, token: &str, args: &[&str]) -> (i32, String, String) {
    let flag = format!("--token={token}");
    run(sb.kubeconfig_path(), &[&[flag.as_str()], args].concat())
}

/// kubectl with `token` is refused with 401: `auth whoami` says that and nothing else;
/// other commands first warn of the discovery they could not do (when none was cached).
#[track_caller]
fn unauthorized(sb: &SandboxHandle, token: &str, args: &[&str]) {
    let (code, _, err) = as_token(sb, token, args);
    assert_eq!(code, 1, "{args:?}: {err}");
    if args == ["auth", "whoami"] {
        assert_eq!(err, UNAUTHORIZED);
    } else {
        assert!(err.ends_with(UNAUTHORIZED), "{args:?}: {err}");
    }
}

fn whoami(sb: &SandboxHandle, token: &str) -> Value {
    let (code, out, err) = as_token(sb, token, &["auth", "whoami", "-o", "json"]);
    assert_eq!(code, 0, "whoami: {err}");
    serde_json::from_str(&out).unwrap()
}

fn uid_of(sb: &SandboxHandle, ns: &str, name: &str) -> String {
    let out = ok(
        sb.kubeconfig_path(),
        &[
            "get",
            "sa",
            name,
            "-n",
            ns,
            "-o",
            "jsonpath={.metadata.uid}",
        ],
    );
    assert!(!out.is_empty(), "{ns}/{name} has a uid");
    out
}

/// The NAME and SECRETS cells of `kubectl get sa` (the age varies).
fn sa_rows(kc: &Path, ns: &str) -> Vec<String> {
    ok(kc, &["get", "sa", "-n", ns])
        .lines()
        .map(|l| {
            let cells: Vec<&str> = l.split_whitespace().collect();
            cells[..2].join(" ")
        })
        .collect()
}

#[test]
fn every_namespace_has_a_default_service_account_as_kubectl_lists_it() {
    let sb = with_ci();
    let kc = sb.kubeconfig_path();
    assert_eq!(
        sa_rows(kc, "demo"),
        ["NAME SECRETS", "ci 0", "default 0"],
        "the namespaces the server starts with have theirs"
    );
    ok(kc, &["create", "namespace", "team-a"]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while sa_rows(kc, "team-a") != ["NAME SECRETS", "default 0"] {
        assert!(Instant::now() < deadline, "{:?}", sa_rows(kc, "team-a"));
        std::thread::sleep(Duration::from_millis(20));
    }
    // Deleted, the controller makes it again (with a new uid).
    let before = uid_of(&sb, "team-a", "default");
    ok(kc, &["delete", "sa", "default", "-n", "team-a"]);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (code, uid, _) = run(
            kc,
            &[
                "get",
                "sa",
                "default",
                "-n",
                "team-a",
                "-o",
                "jsonpath={.metadata.uid}",
            ],
        );
        if code == 0 {
            assert_ne!(uid, before);
            break;
        }
        assert!(Instant::now() < deadline, "default was not made again");
        std::thread::sleep(Duration::from_millis(20));
    }
    let found = ok(kc, &["get", "sa", "-A", "-o", "name"]);
    assert_eq!(
        found.matches("serviceaccount/default").count(),
        3,
        "{found}"
    );
}

#[test]
fn kubectl_create_token_answers_a_jwt_for_the_service_account() {
    let sb = with_ci();
    let kc = sb.kubeconfig_path();
    let token = create_token(&sb, &["--duration", "1h"]);
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");
    let claims = unverified_claims(&token).unwrap();
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["sub"], "system:serviceaccount:demo:ci");
    assert_eq!(claims["aud"], serde_json::json!([ISSUER]));
    let (iat, exp) = (
        claims["iat"].as_i64().unwrap(),
        claims["exp"].as_i64().unwrap(),
    );
    assert_eq!(exp - iat, 3600);
    assert_eq!(claims["nbf"].as_i64(), Some(iat));
    assert_eq!(claims["kubernetes.io"]["namespace"], "demo");
    assert_eq!(claims["kubernetes.io"]["serviceaccount"]["name"], "ci");
    assert_eq!(
        claims["kubernetes.io"]["serviceaccount"]["uid"],
        uid_of(&sb, "demo", "ci").as_str()
    );
    // The TokenRequest itself, as kube-apiserver answers it.
    let out = ok(kc, &["create", "token", "ci", "-n", "demo", "-o", "json"]);
    let tr: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(tr["kind"], "TokenRequest");
    assert_eq!(tr["apiVersion"], "authentication.k8s.io/v1");
    assert_eq!(tr["metadata"]["name"], "ci");
    assert_eq!(tr["metadata"]["namespace"], "demo");
    assert_eq!(tr["spec"]["audiences"], serde_json::json!([ISSUER]));
    assert_eq!(
        tr["spec"]["expirationSeconds"], 3600,
        "the default lifetime"
    );
    assert_eq!(tr["spec"]["boundObjectRef"], Value::Null);
    let exp = unverified_claims(tr["status"]["token"].as_str().unwrap()).unwrap()["exp"]
        .as_i64()
        .unwrap();
    let stamp = tr["status"]["expirationTimestamp"].as_str().unwrap();
    assert_eq!(stamp.parse::<jiff::Timestamp>().unwrap().as_second(), exp);
}

#[test]
fn kubectl_auth_whoami_with_the_token_is_the_service_account() {
    let sb = with_ci();
    let token = create_token(&sb, &[]);
    let review = whoami(&sb, &token);
    let user = &review["status"]["userInfo"];
    assert_eq!(user["username"], "system:serviceaccount:demo:ci");
    assert_eq!(user["uid"], uid_of(&sb, "demo", "ci").as_str());
    assert_eq!(
        user["groups"],
        serde_json::json!([
            "system:serviceaccounts",
            "system:serviceaccounts:demo",
            "system:authenticated"
        ])
    );
    let jti = unverified_claims(&token).unwrap()["jti"].clone();
    assert_eq!(
        user["extra"]["authentication.kubernetes.io/credential-id"],
        serde_json::json!([format!("JTI={}", jti.as_str().unwrap())])
    );
}

#[test]
fn kubectl_auth_can_i_with_the_token_follows_a_role_binding_to_the_service_account() {
    let sb = with_ci();
    let kc = sb.kubeconfig_path();
    let token = create_token(&sb, &[]);
    let can_i = |verb: &str, what: &str| {
        let (code, out, _) = as_token(&sb, &token, &["auth", "can-i", verb, what, "-n", "demo"]);
        (code, out)
    };
    assert_eq!(can_i("get", "secrets"), (1, "no\n".to_string()));
    ok(
        kc,
        &[
            "create",
            "rolebinding",
            "ci-edit",
            "--clusterrole=edit",
            "--serviceaccount=demo:ci",
            "-n",
            "demo",
        ],
    );
    assert_eq!(can_i("get", "secrets"), (0, "yes\n".to_string()));
    assert_eq!(
        can_i("create", "serviceaccounts/token"),
        (0, "yes\n".to_string()),
        "edit may mint tokens"
    );
    let (code, out, _) = as_token(
        &sb,
        &token,
        &["get", "secret", "pg-demo-auth", "-n", "demo", "-o", "name"],
    );
    assert_eq!((code, out.as_str()), (0, "secret/pg-demo-auth\n"));
    // The binding is in demo only.
    let (code, _, err) = as_token(&sb, &token, &["get", "secrets", "-n", "default"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("User \"system:serviceaccount:demo:ci\" cannot list resource \"secrets\""),
        "{err}"
    );
}

#[test]
fn a_token_is_unauthorized_once_its_service_account_is_deleted_or_recreated() {
    let sb = with_ci();
    let kc = sb.kubeconfig_path();
    let token = create_token(&sb, &[]);
    assert_eq!(
        whoami(&sb, &token)["status"]["userInfo"]["username"],
        "system:serviceaccount:demo:ci"
    );
    assert_eq!(
        ok(kc, &["delete", "sa", "ci", "-n", "demo"]),
        "serviceaccount \"ci\" deleted\n"
    );
    unauthorized(&sb, &token, &["auth", "whoami"]);
    // The same name again is another ServiceAccount: the old token stays refused.
    ok(kc, &["create", "sa", "ci", "-n", "demo"]);
    unauthorized(&sb, &token, &["get", "pods", "-n", "demo"]);
    let fresh = create_token(&sb, &[]);
    assert_eq!(
        whoami(&sb, &fresh)["status"]["userInfo"]["username"],
        "system:serviceaccount:demo:ci"
    );
}

#[test]
fn an_expired_token_is_unauthorized() {
    let sb = with_ci();
    let token = create_token(&sb, &["--duration", "10m"]);
    assert_eq!(as_token(&sb, &token, &["auth", "whoami"]).0, 0);
    // kube-apiserver allows a minute past `exp` (go-jose's leeway), not more. NB: real
    // seconds pass while kubectl runs, hence the margin on either side.
    sb.advance_token_clock(Duration::from_secs(600 + 50));
    assert_eq!(
        as_token(&sb, &token, &["auth", "whoami"]).0,
        0,
        "within the leeway"
    );
    sb.advance_token_clock(Duration::from_secs(12));
    unauthorized(&sb, &token, &["auth", "whoami"]);
    // One minted through the handle may be shorter than the API's 10 minutes.
    let short = sb
        .service_account_token("demo", "ci", Duration::from_secs(5))
        .unwrap();
    assert_eq!(as_token(&sb, &short, &["auth", "whoami"]).0, 0);
    sb.advance_token_clock(Duration::from_secs(66));
    unauthorized(&sb, &short, &["auth", "can-i", "get", "pods"]);
}

#[test]
fn token_requests_are_refused_in_kube_apiservers_words() {
    let sb = with_ci();
    let kc = sb.kubeconfig_path();
    let err = refused(
        kc,
        &["create", "token", "ci", "-n", "demo", "--duration", "9m59s"],
    );
    assert_eq!(
        err,
        "error: failed to create token: TokenRequest.authentication.k8s.io \"\" is invalid: spec.expirationSeconds: Invalid value: 599: may not specify a duration less than 10 minutes\n"
    );
    assert!(
        !create_token(&sb, &["--duration", "10m"]).is_empty(),
        "10 minutes is enough"
    );
    let err = refused(kc, &["create", "token", "nope", "-n", "demo"]);
    assert_eq!(
        err,
        "error: failed to create token: serviceaccounts \"nope\" not found\n"
    );
    let err = refused(
        kc,
        &[
            "create",
            "token",
            "ci",
            "-n",
            "demo",
            "--bound-object-kind",
            "Secret",
            "--bound-object-name",
            "nope",
        ],
    );
    assert_eq!(
        err,
        "error: failed to create token: secrets \"nope\" not found\n"
    );
    // Bound to a Secret, the token lives as long as the Secret.
    let bound = create_token(
        &sb,
        &[
            "--bound-object-kind",
            "Secret",
            "--bound-object-name",
            "pg-demo-auth",
        ],
    );
    let claims = unverified_claims(&bound).unwrap();
    assert_eq!(claims["kubernetes.io"]["secret"]["name"], "pg-demo-auth");
    assert_eq!(as_token(&sb, &bound, &["auth", "whoami"]).0, 0);
    ok(kc, &["delete", "secret", "pg-demo-auth", "-n", "demo"]);
    unauthorized(&sb, &bound, &["auth", "whoami"]);
    // A token for another audience is not one for the API server.
    let other = create_token(&sb, &["--audience", "https://vault.example.com"]);
    unauthorized(&sb, &other, &["auth", "whoami"]);
}

#[test]
fn a_user_without_create_serviceaccounts_token_is_forbidden() {
    let sb = with_ci();
    let kc = sb.kubeconfig_path();
    let err = refused(
        kc,
        &[
            "--context",
            "sandbox-bob",
            "create",
            "token",
            "ci",
            "-n",
            "demo",
        ],
    );
    assert_eq!(
        err,
        "error: failed to create token: serviceaccounts \"ci\" is forbidden: User \"bob\" cannot create resource \"serviceaccounts/token\" in API group \"\" in the namespace \"demo\"\n"
    );
    // view may read ServiceAccounts but not mint their tokens; edit may.
    sb.add_user("alice", &[]);
    let alice = sb.kubeconfig_for_user("alice").unwrap();
    sb.bind("alice", "ClusterRole", "view", Some("demo"))
        .unwrap();
    assert_eq!(
        sa_rows(&alice, "demo"),
        ["NAME SECRETS", "ci 0", "default 0"]
    );
    let err = refused(&alice, &["create", "token", "ci", "-n", "demo"]);
    assert!(
        err.contains("cannot create resource \"serviceaccounts/token\""),
        "{err}"
    );
    sb.bind("alice", "ClusterRole", "edit", Some("demo"))
        .unwrap();
    let token = ok(&alice, &["create", "token", "ci", "-n", "demo"]);
    assert_eq!(
        unverified_claims(token.trim()).unwrap()["sub"],
        "system:serviceaccount:demo:ci"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_in_cluster_reads_the_mount_and_reaches_the_server_as_kubernetes_default_svc() {
    let sb = SandboxHandle::start(Options::empty()).unwrap();
    let dir = std::env::temp_dir().join(format!("sa-mount-{}", std::process::id()));
    sb.service_account_mount("demo", "rotator", &dir).unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.join("namespace")).unwrap(),
        "demo"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("ca.crt")).unwrap(),
        sb.ca_pem()
    );
    let token = std::fs::read_to_string(dir.join("token")).unwrap();
    let claims = unverified_claims(&token).unwrap();
    assert_eq!(claims["sub"], "system:serviceaccount:demo:rotator");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3607
    );

    // As kube-rs's in-cluster config builds it from the mount and the environment, the
    // server's certificate checked for the name in-cluster clients use.
    let env: std::collections::HashMap<String, String> = sb.in_cluster_env().into_iter().collect();
    let url = format!(
        "https://{}:{}",
        env["KUBERNETES_SERVICE_HOST"], env["KUBERNETES_SERVICE_PORT"]
    );
    let mut cfg = kube::Config::new(url.parse().unwrap());
    cfg.root_cert_file = Some(dir.join("ca.crt"));
    cfg.root_cert = Some(vec![]);
    cfg.tls_server_name = Some("kubernetes.default.svc".into());
    cfg.auth_info.token_file = Some(dir.join("token").display().to_string());
    cfg.default_namespace = std::fs::read_to_string(dir.join("namespace")).unwrap();
    let client = kube::Client::try_from(cfg.clone()).unwrap();
    let review = kube::Api::<SelfSubjectReview>::all(client.clone())
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .unwrap();
    let user = review.status.unwrap().user_info.unwrap();
    assert_eq!(
        user.username.as_deref(),
        Some("system:serviceaccount:demo:rotator")
    );

    // A name not on the certificate is refused by TLS.
    cfg.tls_server_name = Some("kubernetes.example.com".into());
    let bad = kube::Client::try_from(cfg).unwrap();
    assert!(kube::Api::<SelfSubjectReview>::all(bad)
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .is_err());

    // kube-rs's TokenRequest, as the admin: the REST minimum holds for it too.
    let admin = {
        let kc = kube::config::Kubeconfig::read_from(sb.kubeconfig_path()).unwrap();
        let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .unwrap();
        kube::Client::try_from(cfg).unwrap()
    };
    let sas = kube::Api::<ServiceAccount>::namespaced(admin, "demo");
    let ask = |secs: i64| TokenRequest {
        spec: TokenRequestSpec {
            expiration_seconds: Some(secs),
            ..Default::default()
        },
        ..Default::default()
    };
    let answer = sas
        .create_token_request("rotator", &PostParams::default(), &ask(7200))
        .await
        .unwrap();
    assert_eq!(answer.spec.audiences, vec![ISSUER.to_string()]);
    assert_eq!(answer.spec.expiration_seconds, Some(7200));
    let status = answer.status.unwrap();
    assert_eq!(
        unverified_claims(&status.token).unwrap()["sub"],
        "system:serviceaccount:demo:rotator"
    );
    let err = sas
        .create_token_request("rotator", &PostParams::default(), &ask(60))
        .await
        .unwrap_err();
    match err {
        kube::Error::Api(s) => assert_eq!((s.code, s.reason.as_str()), (422, "Invalid")),
        other => panic!("{other}"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}
