//! The one error type, and the one place errors become exit codes.
//!
//! | code | meaning                                                                   |
//! |------|---------------------------------------------------------------------------|
//! | 0    | success                                                                   |
//! | 1    | error: API or kubeconfig problem, unexpected response                     |
//! | 2    | usage: invalid arguments, unknown TYPE, invalid `--secret` (clap uses 2)  |
//! | 3    | conflict: changed concurrently, or a rotation is already in progress      |
//! | 4    | not found: the target, its Secret, or the operator's CRD                  |
//! | 5    | the rotation Failed or was Skipped                                        |
//! | 6    | refused: not Ready, nothing to roll back to or retry, a second rollback   |
//! | 7    | verify: a login result is wrong (current refused, or previous accepted)   |
//! | 8    | verify: the database could not be reached                                 |
//! | 9    | verify: no login client for this engine's wire protocol                   |
//! | 10   | forbidden: a permission the command needs is missing (nothing written)    |
//! | 11   | `--restart-consumers`: a rollout failed or timed out (the change was made) |
//! | 124  | timed out while waiting (the rotation goes on on the server)              |
//! | 130  | interrupted (Ctrl-C): waiting (it goes on), or writing (nothing landed)   |
//!
//! With several targets the failed rows' common code is the exit code, else 1
//! ([`Error::Partial`]). With several contexts, the first failing context's code, in the
//! order the contexts were given ([`Error::Contexts`]).
//!
//! Messages say what happened and what to do next. None carries a secret value: they are
//! built from names, phases and API status messages only.

use std::time::Duration;

use crate::duration::human;

/// A `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Invalid command-line input, found before any API call.
    #[error("{0}")]
    Usage(String),

    /// The kubeconfig could not be read or has no usable context.
    #[error("cannot load kubeconfig: {source} (check --kubeconfig, $KUBECONFIG and --context)")]
    Kubeconfig {
        /// What was wrong with the kubeconfig or the context.
        #[source]
        source: kube::config::KubeconfigError,
    },

    /// A kube client could not be built from the kubeconfig.
    #[error("cannot create a Kubernetes client: {source}")]
    Client {
        /// What kube-rs could not set up (TLS, a proxy, credentials).
        #[source]
        source: kube::Error,
    },

    /// The target (or another object we need) does not exist.
    #[error("{what} not found{hint}", hint = with_hint(.hint))]
    NotFound {
        /// e.g. `postgres "pg-demo" in namespace "demo"`.
        what: String,
        /// What to do about it.
        hint: Option<String>,
    },

    /// The CRD is not served: the operator that owns it is missing.
    #[error("{operator} ({group}) is not installed: no CRD for {resource}")]
    OperatorMissing {
        /// e.g. `the KubeDB operator`.
        operator: &'static str,
        /// e.g. `kubedb.com`.
        group: &'static str,
        /// e.g. `postgreses.kubedb.com`.
        resource: String,
    },

    /// Someone else changed the object between our read and our write.
    // NB: never retried automatically: a retry of a generation bump could bump twice.
    #[error(
        "{target} was changed by someone else since it was read; nothing was written by this \
         command; re-run to rotate from the new state"
    )]
    Conflict {
        /// e.g. `sqlmi/sqlmi-demo`.
        target: String,
    },

    /// A rotation is already pending or running for the target.
    #[error("{target} already has a rotation in progress: {request} is {phase}; follow it with `{follow}`")]
    InProgress {
        /// e.g. `pg/pg-demo`.
        target: String,
        /// e.g. `postgresopsrequest pg-demo-rotate-auth-1a2b3`.
        request: String,
        /// Its phase now (Pending, Progressing; Arc: the state being applied).
        phase: String,
        /// A command that follows it.
        follow: String,
    },

    /// A precondition refuses the change (not Ready, nothing to roll back to, ...).
    #[error("{0}")]
    Refused(String),

    /// The `--secret` does not hold an acceptable credential.
    #[error("secret {name:?} cannot be used: {reason}")]
    InvalidSecret {
        /// The Secret's name.
        name: String,
        /// What is wrong (never the value).
        reason: String,
    },

    /// The server reports the rotation Failed or Skipped.
    #[error("{request} {phase}: {reason}")]
    RotationFailed {
        /// e.g. `postgresopsrequest pg-demo-rotate-auth-1a2b3`.
        request: String,
        /// `Failed`, `Skipped`, `Error`, ...
        phase: String,
        /// The failing condition's message.
        reason: String,
    },

    /// `--wait` ran out of time.
    #[error(
        "timed out after {after} waiting for {waiting_for}; the rotation continues on the \
         server: follow it with `{follow}`",
        after = human(*.after)
    )]
    Timeout {
        /// How long we waited.
        after: Duration,
        /// What we waited for.
        waiting_for: String,
        /// A command that follows it.
        follow: String,
    },

    /// Ctrl-C while waiting.
    #[error("interrupted; the rotation continues on the server: follow it with `{follow}`")]
    Interrupted {
        /// A command that follows it.
        follow: String,
    },

    /// Ctrl-C while writing, before the ops request landed: nothing was changed.
    #[error(
        "interrupted before the rotation was written; nothing was changed{}",
        match removed { Some(s) => format!(" (secret {s}, made for it, was deleted)"), None => String::new() }
    )]
    InterruptedBeforeWrite {
        /// The Secret made for the rotation and deleted again, if one was made.
        removed: Option<String>,
    },

    /// The write landed, then following it failed: what is known, what is not, and how to
    /// find out. Never "re-run": that could rotate twice.
    #[error(
        "{written}; its outcome is unknown: {source}. Do not re-run the rotation; follow it \
         with `{follow}`"
    )]
    OutcomeUnknown {
        /// What is known to have been written, e.g. `postgresopsrequest demo/x was created`.
        written: String,
        /// Why the outcome could not be followed.
        source: Box<Error>,
        /// A command that follows it.
        follow: String,
    },

    /// Permissions the command needs are missing: found before anything was written
    /// (exit 10).
    #[error(
        "not allowed to {}: nothing was changed. Ask a cluster administrator for them (the \
         kubectl-rotate-rotator ClusterRole in rbac/ grants what a rotation needs); check \
         with `{can_i}`",
        missing.join(", ")
    )]
    Forbidden {
        /// Each missing permission, e.g. `create postgresopsrequests.ops.kubedb.com in
        /// namespace "demo"`.
        missing: Vec<String>,
        /// The `kubectl auth can-i` command for the first.
        can_i: String,
    },

    /// `--restart-consumers`: the change was made, and a restarted workload's rollout
    /// failed or timed out (exit 11).
    #[error("{0}")]
    RolloutFailed(String),

    /// An API call failed.
    #[error("cannot {action}: {}", describe(.source))]
    Api {
        /// e.g. `get postgreses.kubedb.com demo/pg-demo`.
        action: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },

    /// The server answered something we cannot use.
    #[error("unexpected response: {0}")]
    Unexpected(String),

    /// `list --older-than`: some credentials are overdue (exit 1, so CI and cron notice).
    #[error("{count} database(s) have credentials older than {older_than}: rotate them with `kubectl rotate auth`")]
    Stale {
        /// How many databases are past the threshold.
        count: usize,
        /// The threshold as given, e.g. `90d`.
        older_than: String,
    },

    /// Some targets of a command with several failed (each row says why).
    #[error("{failed} of {total} databases failed; their rows say why")]
    Partial {
        /// How many failed.
        failed: usize,
        /// How many there were.
        total: usize,
        /// The failures' common exit code, else 1.
        code: u8,
    },

    /// Some contexts of a command run in several failed (each said why on stderr).
    #[error("{} of {total} contexts failed: {}", failed.len(), failed.join(", "))]
    Contexts {
        /// The contexts that failed, in the order given.
        failed: Vec<String>,
        /// How many contexts there were.
        total: usize,
        /// The first failing context's exit code.
        code: u8,
    },

    /// `verify`: the database refused the current credential, or still accepts the
    /// previous one (exit 7).
    #[error("{0}")]
    LoginWrong(String),

    /// `verify`: the database could not be reached: connection refused, closed before it
    /// said anything, or silent until the per-attempt timeout (exit 8).
    #[error("{0}")]
    DbUnreachable(String),

    /// `verify`: a login attempt failed for another reason (TLS, an unsupported
    /// authentication method, a server error other than a refused login).
    // NB: exit 1, as any other unexpected failure: the credential's state is unknown.
    #[error("{0}")]
    LoginError(String),

    /// `verify`: no login client speaks this engine's wire protocol (exit 9).
    #[error(
        "verification not supported for {kind}: no login client for its wire protocol \
         (supported: PostgreSQL, MySQL/MariaDB, SQL Server, MongoDB, Redis, Elasticsearch)"
    )]
    VerifyUnsupported {
        /// e.g. `Cassandra`.
        kind: String,
    },

    /// Reading stdin or writing stdout or stderr failed.
    #[error("cannot read input or write output: {0}")]
    Io(#[from] std::io::Error),

    /// The async runtime the plugin runs on could not start (threads, the OS's limits).
    #[error("cannot start the plugin's async runtime: {0}")]
    Runtime(std::io::Error),
}

fn with_hint(h: &Option<String>) -> String {
    h.as_ref().map(|h| format!(": {h}")).unwrap_or_default()
}

impl Error {
    /// The process exit code for this error: the single mapping (see the module docs).
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) | Error::InvalidSecret { .. } => 2,
            Error::Conflict { .. } | Error::InProgress { .. } => 3,
            Error::NotFound { .. } | Error::OperatorMissing { .. } => 4,
            Error::RotationFailed { .. } => 5,
            Error::Refused(_) => 6,
            Error::LoginWrong(_) => 7,
            Error::DbUnreachable(_) => 8,
            Error::VerifyUnsupported { .. } => 9,
            Error::Forbidden { .. } => 10,
            Error::RolloutFailed(_) => 11,
            Error::Timeout { .. } => 124,
            Error::Interrupted { .. } | Error::InterruptedBeforeWrite { .. } => 130,
            Error::Partial { code, .. } | Error::Contexts { code, .. } => *code,
            Error::Api { source, .. } => match status_code(source) {
                Some(404) => 4,
                Some(409) => 3,
                _ => 1,
            },
            Error::Kubeconfig { .. }
            | Error::Client { .. }
            | Error::Unexpected(_)
            | Error::Stale { .. }
            | Error::LoginError(_)
            | Error::Io(_)
            | Error::Runtime(_)
            | Error::OutcomeUnknown { .. } => 1,
        }
    }

    /// Wraps a client error with what we were doing.
    pub fn api(action: impl Into<String>, source: kube::Error) -> Error {
        Error::Api {
            action: action.into(),
            source,
        }
    }
}

/// The HTTP status of an API error, if the server answered.
pub fn status_code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}

/// `e` and what caused it, one after the other ("client error (Connect): invalid peer
/// certificate: UnknownIssuer"): hyper's own message never says why a connection failed.
/// A cause already said by the one before it is left out.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let said = c.to_string();
        if !said.is_empty() && !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        cause = c.source();
    }
    text
}

/// The server's message plus what the user can do about it.
fn describe(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => {
            let msg = if s.message.is_empty() {
                s.reason.clone()
            } else {
                s.message.clone()
            };
            let advice = match s.code {
                401 => "the cluster did not accept your credentials: log in again, or check --kubeconfig and --context",
                403 => "your user is not allowed to do this: ask a cluster administrator for RBAC access",
                404 => "it does not exist (check the name and -n/--namespace)",
                409 => "it was changed concurrently or already exists: re-run to act on the new state",
                410 => "the server's history moved on: re-run",
                422 => "the server rejected the request as invalid",
                429 => "the API server is throttling requests: try again shortly",
                500..=599 => "the API server failed: try again shortly",
                _ => "",
            };
            if advice.is_empty() {
                msg
            } else {
                format!("{msg} ({advice})")
            }
        }
        kube::Error::HyperError(_) | kube::Error::Service(_) => {
            let text = with_causes(e);
            if text.contains("certificate") {
                format!(
                    "{text} (the API server's certificate is not trusted: check the \
                     kubeconfig's certificate-authority, or --certificate-authority)"
                )
            } else {
                format!(
                    "{text} (the API server could not be reached or did not answer in time: \
                     check the cluster is up, your network, any proxy, and --request-timeout)"
                )
            }
        }
        // NB: serde's message can quote a value it could not read, a Secret's among them:
        // say what is wrong without it.
        kube::Error::SerdeError(se) => format!(
            "the server's answer could not be read ({} at line {}, column {}: a field of an \
             unexpected type, or Secret data that is not base64)",
            match se.classify() {
                serde_json::error::Category::Io => "an I/O error",
                serde_json::error::Category::Syntax => "not JSON",
                serde_json::error::Category::Data => "unexpected data",
                serde_json::error::Category::Eof => "cut short",
            },
            se.line(),
            se.column()
        ),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;

    fn api(code: u16, reason: &str, message: &str) -> Error {
        Error::api(
            "get postgreses.kubedb.com demo/pg-demo",
            kube::Error::Api(Status::failure(message, reason).with_code(code).boxed()),
        )
    }

    #[test]
    fn every_error_maps_to_its_documented_exit_code() {
        let cases: Vec<(Error, u8)> = vec![
            (Error::Usage("x".into()), 2),
            (
                Error::InvalidSecret {
                    name: "s".into(),
                    reason: "r".into(),
                },
                2,
            ),
            (
                Error::Conflict {
                    target: "sqlmi/x".into(),
                },
                3,
            ),
            (
                Error::InProgress {
                    target: "pg/x".into(),
                    request: "r".into(),
                    phase: "Pending".into(),
                    follow: "f".into(),
                },
                3,
            ),
            (
                Error::NotFound {
                    what: "x".into(),
                    hint: None,
                },
                4,
            ),
            (
                Error::OperatorMissing {
                    operator: "o",
                    group: "kubedb.com",
                    resource: "r".into(),
                },
                4,
            ),
            (
                Error::RotationFailed {
                    request: "r".into(),
                    phase: "Failed".into(),
                    reason: "x".into(),
                },
                5,
            ),
            (Error::Refused("x".into()), 6),
            (Error::LoginWrong("x".into()), 7),
            (Error::DbUnreachable("x".into()), 8),
            (
                Error::VerifyUnsupported {
                    kind: "Cassandra".into(),
                },
                9,
            ),
            (Error::LoginError("x".into()), 1),
            (
                Error::Timeout {
                    after: Duration::from_secs(1),
                    waiting_for: "w".into(),
                    follow: "f".into(),
                },
                124,
            ),
            (Error::Interrupted { follow: "f".into() }, 130),
            (api(404, "NotFound", "nf"), 4),
            (api(409, "Conflict", "c"), 3),
            (api(403, "Forbidden", "no"), 1),
            (api(500, "InternalError", "boom"), 1),
            (Error::Unexpected("x".into()), 1),
            (
                Error::Contexts {
                    failed: vec!["b".into()],
                    total: 2,
                    code: 4,
                },
                4,
            ),
        ];
        for (e, code) in cases {
            assert_eq!(e.exit_code(), code, "{e}");
        }
    }

    #[test]
    fn api_errors_say_what_we_did_and_what_to_do() {
        let e = api(
            403,
            "Forbidden",
            "postgreses.kubedb.com is forbidden: User \"bob\" cannot get",
        );
        let s = e.to_string();
        assert!(
            s.starts_with(
                "cannot get postgreses.kubedb.com demo/pg-demo: postgreses.kubedb.com is forbidden"
            ),
            "{s}"
        );
        assert!(
            s.contains("ask a cluster administrator for RBAC access"),
            "{s}"
        );
        let s = api(401, "Unauthorized", "Unauthorized").to_string();
        assert!(s.contains("log in again"), "{s}");
    }

    #[test]
    fn the_conflict_message_says_nothing_was_written() {
        let s = Error::Conflict {
            target: "sqlmi/sqlmi-demo".into(),
        }
        .to_string();
        assert_eq!(
            s,
            "sqlmi/sqlmi-demo was changed by someone else since it was read; nothing was written \
             by this command; re-run to rotate from the new state"
        );
    }

    #[test]
    fn a_timeout_says_the_rotation_continues_and_how_to_follow_it() {
        let s = Error::Timeout {
            after: Duration::from_secs(300),
            waiting_for: "postgresopsrequest pg-demo-rotate-auth-1a2b3".into(),
            follow: "kubectl get pgops pg-demo-rotate-auth-1a2b3 -n demo -w".into(),
        }
        .to_string();
        assert!(
            s.starts_with("timed out after 5m waiting for postgresopsrequest"),
            "{s}"
        );
        assert!(s.contains("continues on the server"), "{s}");
    }

    #[test]
    fn a_secret_that_cannot_be_decoded_is_described_without_its_value() {
        let bad = r#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"s"},"data":{"password":"Pa$$w0rd!!"}}"#;
        let se = serde_json::from_str::<k8s_openapi::api::core::v1::Secret>(bad).unwrap_err();
        let e = Error::api("get secret demo/s", kube::Error::SerdeError(se));
        let text = e.to_string();
        assert!(!text.contains("Pa$$w0rd"), "{text}");
        assert!(text.contains("not base64"), "{text}");
        assert_eq!(e.exit_code(), 1);
    }
}
