//! Login verification: does the database accept the credential its auth Secret holds now,
//! and refuse the one kept as previous? The wire protocols live in the `rotate-login`
//! crate; this module decides what to try, where, with which TLS, and what the results mean.
//!
//! Everything here but [`reach`] is pure, so the decisions are unit-tested without a cluster.
//!
//! NB: a password reaches exactly one place: [`rotate_login::LoginRequest::password`], whose
//! `Debug` masks it and whose every `detail` the crate sanitizes. Nothing in a
//! [`VerifyReport`] is secret.

pub mod reach;

use serde::Serialize;

use crate::engines::{EngineSpec, Protocol};
use crate::error::{Error, Result};
use crate::report::{Role, Subject};

pub use rotate_login::{LoginResult, Tls};

/// How to log in to an engine: the wire protocol and the port its pods listen on when the
/// primary Service does not say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoginRoute {
    /// The `rotate-login` client to speak.
    pub protocol: rotate_login::Protocol,
    /// The database's usual container port (KubeDB defaults; REFERENCE.md).
    pub default_port: u16,
}

/// The login route of an engine, or `None` when no client speaks its protocol yet.
///
/// NB: keyed on the engine table's protocol column, then narrowed by kind where one
/// column value covers several products (HTTP is Elasticsearch's REST API only; Druid,
/// Solr and the others speak other HTTP APIs).
pub fn route(engine: &EngineSpec) -> Option<LoginRoute> {
    use rotate_login::Protocol as P;
    let (protocol, default_port) = match (engine.protocol, engine.kind) {
        (Protocol::Postgres, "PgBouncer") => (P::Postgres, 5432),
        (Protocol::Postgres, "Pgpool") => (P::Postgres, 9999),
        (Protocol::Postgres, _) => (P::Postgres, 5432),
        (Protocol::MySql, "ProxySQL") => (P::Mysql, 6033),
        (Protocol::MySql, _) => (P::Mysql, 3306),
        (Protocol::Tds, _) => (P::Tds, 1433),
        // NB: DocumentDB speaks the MongoDB wire protocol through its gateway.
        (Protocol::MongoDb, _) => (P::Mongodb, 27017),
        (Protocol::Redis, "RedisSentinel") => (P::Redis, 26379),
        (Protocol::Redis, _) => (P::Redis, 6379),
        (Protocol::Http, "Elasticsearch") => (P::Elasticsearch, 9200),
        _ => return None,
    };
    Some(LoginRoute {
        protocol,
        default_port,
    })
}

/// The error for an engine without a login client (exit 9).
pub fn unsupported(engine: &EngineSpec) -> Error {
    Error::VerifyUnsupported {
        kind: engine.kind.to_string(),
    }
}

/// The TLS mode for a database: `--insecure-skip-db-tls-verify` encrypts without verifying;
/// a KubeDB database with `spec.tls` requires TLS verified against its CA (see
/// [`ca_candidates`]); anything else uses TLS when the server offers it (libpq's
/// `sslmode=prefer`).
pub fn tls_mode(has_spec_tls: bool, insecure: bool) -> Tls {
    match (insecure, has_spec_tls) {
        (true, _) => Tls::RequireInsecure,
        (false, true) => Tls::Require,
        (false, false) => Tls::Prefer,
    }
}

/// The Secrets that may hold the CA of a KubeDB database with `spec.tls`, most likely
/// first: the client certificate (KubeDB puts the issuing CA's `ca.crt` beside `tls.crt`),
/// the certificates `spec.tls` lists, then `<db>-ca`.
pub fn ca_candidates(db: &str, tls_secrets: &[String]) -> Vec<String> {
    let mut out = vec![format!("{db}-client-cert")];
    for s in tls_secrets {
        if !out.contains(s) {
            out.push(s.clone());
        }
    }
    let ca = format!("{db}-ca");
    if !out.contains(&ca) {
        out.push(ca);
    }
    out
}

/// A TLS mode as shown in `-o wide` and JSON.
pub fn tls_name(t: Tls) -> &'static str {
    match t {
        Tls::Disable => "disable",
        Tls::Prefer => "prefer",
        Tls::Require => "require",
        Tls::RequireInsecure => "require-insecure",
    }
}

/// One login attempt, as reported.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    /// current or previous.
    pub credential: Role,
    /// The username tried.
    pub username: String,
    /// `accepted`, `rejected`, `unreachable` or `error`.
    pub result: String,
    /// The protocol's code for a refusal (`28P01`, `1045`, `WRONGPASS`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The server's own message (sanitized: never the password).
    pub detail: String,
    /// The whole attempt, port-forward set-up included, in milliseconds.
    pub latency_ms: u64,
    /// What a healthy rotation gives: current `accepted`, previous `rejected`.
    pub expected: String,
}

impl Attempt {
    /// Builds the report row of an outcome.
    pub fn new(credential: Role, username: &str, outcome: &rotate_login::Outcome) -> Attempt {
        let code = match &outcome.result {
            LoginResult::Rejected { code } => Some(code.clone()),
            _ => None,
        };
        Attempt {
            credential,
            username: username.to_string(),
            result: outcome.result.to_string(),
            code,
            detail: outcome.detail.clone(),
            latency_ms: outcome.latency.as_millis().min(u128::from(u64::MAX)) as u64,
            expected: match credential {
                Role::Current => "accepted",
                Role::Previous => "rejected",
            }
            .into(),
        }
    }

    /// Whether the result is the one a healthy rotation gives.
    pub fn as_expected(&self) -> bool {
        self.result == self.expected
    }
}

/// What `verify` returns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyReport {
    /// What the document is (`LoginVerification`) and which database it is about.
    #[serde(flatten)]
    pub subject: Subject,
    /// The wire protocol spoken (`postgres`, `mysql`, `redis`, ...).
    pub protocol: String,
    /// How the database was reached: `pod/<name>:<port>` (port-forward) or `HOST:PORT`.
    pub via: String,
    /// The TLS mode (`prefer`, `require`, `require-insecure`).
    pub tls: String,
    /// The Secret whose `ca.crt` the server's certificate was verified against (TLS
    /// `require` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_secret: Option<String>,
    /// Current first, then previous (when one is kept).
    pub attempts: Vec<Attempt>,
    /// Why a credential was not tried (printed on stderr).
    #[serde(skip)]
    pub notes: Vec<String>,
    /// The target as the user typed it (`pg/pg-demo`), for messages.
    #[serde(skip)]
    pub typed: String,
}

impl VerifyReport {
    /// The attempt for `role`, if it was made.
    pub fn attempt(&self, role: Role) -> Option<&Attempt> {
        self.attempts.iter().find(|a| a.credential == role)
    }

    /// The target as the user typed it, else `kind/name`, for messages.
    fn what(&self) -> String {
        if self.typed.is_empty() {
            format!(
                "{}/{}",
                self.subject.target_kind.to_ascii_lowercase(),
                self.subject.name
            )
        } else {
            self.typed.clone()
        }
    }

    /// `Ok` when current is accepted and previous rejected (or absent); else the error
    /// whose exit code says what went wrong: a wrong result (7) before an unreachable
    /// database (8) before any other failure (1).
    pub fn verdict(&self) -> Result<()> {
        let describe = |a: &Attempt| {
            let code = a
                .code
                .as_deref()
                .map(|c| format!(" ({c})"))
                .unwrap_or_default();
            format!(
                "the {} credential was {}{code}",
                a.credential.as_str(),
                a.result
            )
        };
        let wrong: Vec<&Attempt> = self
            .attempts
            .iter()
            .filter(|a| matches!(a.result.as_str(), "accepted" | "rejected") && !a.as_expected())
            .collect();
        if !wrong.is_empty() {
            let what: Vec<String> = wrong.iter().map(|a| describe(a)).collect();
            let advice = if wrong.iter().any(|a| a.credential == Role::Current) {
                "the database does not accept the password its auth Secret holds: clients \
                 reading the Secret cannot log in"
            } else {
                "the database still accepts the previous password: it was not changed on the \
                 server"
            };
            return Err(Error::LoginWrong(format!(
                "{}: {}; {advice}",
                self.what(),
                what.join(", ")
            )));
        }
        if let Some(a) = self.attempts.iter().find(|a| a.result == "unreachable") {
            let advice = if self.via.starts_with("pod/") {
                "is the database running in that pod? `kubectl describe` it, or connect \
                 directly with --address HOST:PORT"
            } else {
                "is the database listening at that address?"
            };
            return Err(Error::DbUnreachable(format!(
                "{}: cannot reach the database via {}: {} ({advice})",
                self.what(),
                self.via,
                a.detail
            )));
        }
        if let Some(a) = self.attempts.iter().find(|a| a.result == "error") {
            // NB: the login crate words certificate problems this way (login/src/tls.rs).
            let advice = match &self.ca_secret {
                Some(ca)
                    if a.detail
                        .contains("TLS handshake failed: the server's certificate") =>
                {
                    format!(
                        " (checked against ca.crt of secret {ca}: renew the database's \
                         certificate or correct that CA; --insecure-skip-db-tls-verify \
                         encrypts without checking it)"
                    )
                }
                _ => String::new(),
            };
            return Err(Error::LoginError(format!(
                "{}: the {} credential could not be checked: {}{advice}",
                self.what(),
                a.credential.as_str(),
                a.detail
            )));
        }
        Ok(())
    }

    /// One line for stderr on success.
    pub fn summary(&self) -> String {
        let prev = match self.attempt(Role::Previous) {
            Some(_) => "previous rejected",
            None => "no previous credential to check",
        };
        format!("verified {}: current accepted, {prev}", self.what())
    }
}

/// A fresh report for a target.
pub fn report(
    namespace: &str,
    engine: &EngineSpec,
    name: &str,
    protocol: rotate_login::Protocol,
    via: String,
    tls: Tls,
) -> VerifyReport {
    VerifyReport {
        subject: Subject::new("LoginVerification", namespace, engine, name),
        protocol: protocol.to_string(),
        via,
        tls: tls_name(tls).to_string(),
        ca_secret: None,
        attempts: Vec::new(),
        notes: Vec::new(),
        typed: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engines::find;
    use std::time::Duration;

    fn outcome(result: LoginResult) -> rotate_login::Outcome {
        rotate_login::Outcome {
            result,
            detail: "server says".into(),
            latency: Duration::from_millis(12),
            password_in_clear: false,
        }
    }

    fn with(attempts: Vec<(Role, LoginResult)>) -> VerifyReport {
        let mut r = report(
            "demo",
            find("pg").unwrap(),
            "pg-demo",
            rotate_login::Protocol::Postgres,
            "pod/pg-demo-0:5432".into(),
            Tls::Prefer,
        );
        r.attempts = attempts
            .into_iter()
            .map(|(role, res)| Attempt::new(role, "postgres", &outcome(res)))
            .collect();
        r
    }

    fn rejected() -> LoginResult {
        LoginResult::Rejected {
            code: "28P01".into(),
        }
    }

    #[test]
    fn engines_with_a_login_client_have_a_route_and_the_rest_do_not() {
        let p = |t: &str| route(find(t).unwrap()).map(|r| (r.protocol, r.default_port));
        use rotate_login::Protocol as P;
        assert_eq!(p("pg"), Some((P::Postgres, 5432)));
        assert_eq!(p("md"), Some((P::Mysql, 3306)));
        assert_eq!(p("my"), Some((P::Mysql, 3306)));
        assert_eq!(p("ms"), Some((P::Tds, 1433)));
        assert_eq!(p("sqlmi"), Some((P::Tds, 1433)));
        assert_eq!(p("mg"), Some((P::Mongodb, 27017)));
        assert_eq!(p("rd"), Some((P::Redis, 6379)));
        assert_eq!(p("es"), Some((P::Elasticsearch, 9200)));
        for none in ["cassandra", "druid", "solr", "kafka", "qdrant", "memcached"] {
            assert_eq!(p(none), None, "{none}");
        }
    }

    #[test]
    fn current_accepted_and_previous_rejected_or_absent_is_success() {
        assert!(with(vec![
            (Role::Current, LoginResult::Accepted),
            (Role::Previous, rejected())
        ])
        .verdict()
        .is_ok());
        let only = with(vec![(Role::Current, LoginResult::Accepted)]);
        assert!(only.verdict().is_ok());
        assert!(only.summary().contains("no previous credential"));
    }

    #[test]
    fn a_wrong_login_result_exits_7_and_says_which() {
        let e = with(vec![
            (Role::Current, rejected()),
            (Role::Previous, LoginResult::Accepted),
        ])
        .verdict()
        .unwrap_err();
        assert_eq!(e.exit_code(), 7);
        let s = e.to_string();
        assert!(s.contains("current credential was rejected (28P01)"), "{s}");
        assert!(s.contains("previous credential was accepted"), "{s}");
        let e = with(vec![
            (Role::Current, LoginResult::Accepted),
            (Role::Previous, LoginResult::Accepted),
        ])
        .verdict()
        .unwrap_err();
        assert!(e.to_string().contains("not changed on the server"), "{e}");
    }

    #[test]
    fn unreachable_exits_8_and_other_errors_1_but_a_wrong_result_comes_first() {
        let e = with(vec![(Role::Current, LoginResult::Unreachable)])
            .verdict()
            .unwrap_err();
        assert_eq!(e.exit_code(), 8);
        let e = with(vec![(Role::Current, LoginResult::Error)])
            .verdict()
            .unwrap_err();
        assert_eq!(e.exit_code(), 1);
        let e = with(vec![
            (Role::Current, rejected()),
            (Role::Previous, LoginResult::Unreachable),
        ])
        .verdict()
        .unwrap_err();
        assert_eq!(e.exit_code(), 7);
        assert_eq!(unsupported(find("cassandra").unwrap()).exit_code(), 9);
    }

    #[test]
    fn a_certificate_the_ca_refuses_names_the_ca_secret_and_what_to_do() {
        let mut r = with(vec![(Role::Current, LoginResult::Error)]);
        r.attempts[0].detail =
            "TLS handshake failed: the server's certificate expired 2 days ago".into();
        let plain = r.verdict().unwrap_err().to_string();
        assert!(
            !plain.contains("checked against"),
            "no CA, no advice: {plain}"
        );
        r.ca_secret = Some("pg-demo-client-cert".into());
        let e = r.verdict().unwrap_err();
        assert_eq!(e.exit_code(), 1);
        let said = e.to_string();
        assert!(
            said.contains(
                "expired 2 days ago (checked against ca.crt of secret pg-demo-client-cert: renew"
            ),
            "{said}"
        );
        assert!(said.contains("--insecure-skip-db-tls-verify"), "{said}");
        r.attempts[0].detail = "the server does not support TLS".into();
        assert!(!r
            .verdict()
            .unwrap_err()
            .to_string()
            .contains("checked against"));
    }

    #[test]
    fn tls_is_required_with_the_ca_for_spec_tls_and_insecure_only_when_asked() {
        let cands = ca_candidates("pg", &["pg-server-cert".into(), "pg-client-cert".into()]);
        assert_eq!(cands, ["pg-client-cert", "pg-server-cert", "pg-ca"]);
        assert_eq!(tls_mode(true, false), Tls::Require);
        assert_eq!(tls_mode(true, true), Tls::RequireInsecure);
        assert_eq!(tls_mode(false, false), Tls::Prefer);
        assert_eq!(tls_mode(false, true), Tls::RequireInsecure);
    }
}
