//! `kubectl rotate auth TYPE/NAME ...`: rotate credentials.

use std::io::BufRead;

use kube::api::{Api, DynamicObject};

use crate::api::discovery::{discover, Wanted};
use crate::api::read::get_target;
use crate::backend;
use crate::cli::AuthArgs;
use crate::context::Ctx;
use crate::creds::{self, Password};
use crate::error::{Error, Result};
use crate::model::DbItem;
use crate::plan::{ChangePlan, NewCredential};
use crate::report::Action;
use crate::target::{validate_name, Selection, Target};

/// Checks `auth` arguments into a plan (before any API call); with `--password-stdin`,
/// reads the password from `stdin`, which must not be a terminal (it would echo what is
/// typed).
pub fn plan(
    args: &AuthArgs,
    stdin: &mut dyn BufRead,
    stdin_is_terminal: bool,
) -> Result<ChangePlan> {
    if args.password_stdin && stdin_is_terminal {
        return Err(Error::Usage(
            "--password-stdin reads the password from a pipe or file, not a terminal (it would \
             echo): printf '%s\\n' \"$PASSWORD\" | kubectl rotate auth ... --password-stdin"
                .into(),
        ));
    }
    let credential = credential(args, stdin)?;
    let mut plan = super::change_plan(
        Action::Rotate,
        &args.targets,
        &args.change,
        credential,
        args.force,
    )?;
    if args.older_than.is_some() && plan.selection.single().is_none() {
        return Err(Error::Usage(
            "--older-than rotates one database: name exactly one (to find the overdue ones, \
             kubectl rotate list -A --older-than AGE)"
                .into(),
        ));
    }
    plan.older_than = args.older_than.clone();
    if plan.credential != NewCredential::Operator {
        let one = plan.selection.single();
        let per_database = matches!(plan.credential, NewCredential::Generate { .. });
        if one.is_none() && !per_database {
            return Err(Error::Usage(
                "--secret and --password-stdin give one credential, for one database: name \
                 exactly one (use --generate for a new password per database)"
                    .into(),
            ));
        }
        if let Some(t) = one {
            backend::of(t.engine).check(&plan.plan_for(t.clone(), ""))?;
            // Rules that need no cluster: the fixed user, and the policy when the user is known.
            if let Some(u) = plan.credential.username() {
                creds::check_username(t.engine, u, None).map_err(Error::Usage)?;
            }
            if let NewCredential::Supplied { password, username } = &plan.credential {
                creds::check_input(t.engine.password_policy, password).map_err(|why| {
                    Error::Usage(format!("the password from stdin cannot be used: {why}"))
                })?;
                let user = username.as_deref().or(t.engine.admin_user);
                if let Some(user) = user {
                    creds::check_policy(t.engine.password_policy, user, password).map_err(
                        |why| {
                            Error::Usage(format!("the password from stdin cannot be used: {why}"))
                        },
                    )?;
                }
            }
        }
    }
    if let (Selection::Named(targets), Some(u)) = (&plan.selection, plan.credential.username()) {
        for t in targets {
            creds::check_username(t.engine, u, None).map_err(Error::Usage)?;
        }
    }
    Ok(plan)
}

/// Where the new password comes from, per the credential flags.
fn credential(args: &AuthArgs, stdin: &mut dyn BufRead) -> Result<NewCredential> {
    if let Some(u) = &args.username {
        if !(args.password_stdin || args.generate) {
            return Err(Error::Usage(
                "--username goes with --password-stdin or --generate".into(),
            ));
        }
        if u.is_empty() || u.chars().any(|c| c.is_control() || c == ':') {
            return Err(Error::Usage(format!(
                "--username {u:?} is not a valid username"
            )));
        }
    }
    if let Some(secret) = &args.secret {
        validate_name(secret)
            .map_err(|_| Error::Usage(format!("--secret {secret:?} is not a valid Secret name")))?;
        return Ok(NewCredential::Secret(secret.clone()));
    }
    if args.generate {
        return Ok(NewCredential::Generate {
            username: args.username.clone(),
        });
    }
    if args.password_stdin {
        return Ok(NewCredential::Supplied {
            username: args.username.clone(),
            password: read_password(stdin)?,
        });
    }
    Ok(NewCredential::Operator)
}

/// One line from stdin, without its line ending; never echoed, never in a message.
fn read_password(stdin: &mut dyn BufRead) -> Result<Password> {
    // NB: all of stdin, as `docker login --password-stdin` reads it: a second line would
    // otherwise be dropped without a word.
    let mut input = String::new();
    stdin
        .read_to_string(&mut input)
        .map_err(|e| Error::Usage(format!("cannot read the password from stdin: {e}")))?;
    let (line, rest) = input.split_once('\n').unwrap_or((input.as_str(), ""));
    let value = line.strip_suffix('\r').unwrap_or(line);
    if !rest.trim().is_empty() {
        return Err(Error::Usage(
            "--password-stdin reads one line, and stdin holds more: pipe only the password".into(),
        ));
    }
    if value.is_empty() {
        return Err(Error::Usage(
            "--password-stdin read an empty password: pipe one line holding it".into(),
        ));
    }
    Ok(Password::new(value))
}

/// `auth --older-than`: why `target` is not due (its credential is not older than `age`),
/// or `None` when it is. Its age is the one `list` shows (since the last rotation, else
/// since creation), read with a GET of the database and, for KubeDB without a recorded
/// update, of its auth Secret's metadata.
pub async fn not_due(
    ctx: &Ctx,
    target: &Target,
    ns: &str,
    age: &crate::duration::OlderThan,
) -> Result<Option<String>> {
    let engine = target.engine;
    let ar = discover(ctx, &[Wanted::engine(engine)]).await?.remove(0);
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), ns, &ar);
    let db = DbItem::from_dynamic(&get_target(&api, target, ns).await?);
    let secret = match db.credential_secret(engine) {
        Some(name) => {
            let secrets: Api<k8s_openapi::api::core::v1::Secret> =
                Api::namespaced(ctx.client.clone(), ns);
            crate::api::retry(|| secrets.get_metadata_opt(&name))
                .await
                .map_err(|e| Error::api(format!("get secret {ns}/{name}"), e))?
                .and_then(|m| serde_json::from_value(serde_json::json!({"metadata": m})).ok())
        }
        None => None,
    };
    let now = jiff::Timestamp::now();
    let (_, current) = super::list::credential_age(engine, &db, secret.as_ref(), None, now);
    let limit = i64::try_from(age.get().as_secs()).unwrap_or(i64::MAX);
    Ok(match current {
        // NB: as `list --older-than`, an unknown age counts as overdue.
        Some(a) if a <= limit => Some(format!(
            "{target}: not rotated: its credential is {} old, not older than {age} (--older-than)",
            crate::duration::human_secs(a)
        )),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn plan_of_with(args: &[&str], stdin: &str) -> Result<ChangePlan> {
        let cli =
            Cli::try_parse_from(std::iter::once("kubectl-rotate").chain(args.iter().copied()))
                .unwrap();
        let Command::Auth(a) = cli.command else {
            panic!()
        };
        plan(&a, &mut stdin.as_bytes(), false)
    }

    fn plan_of(args: &[&str]) -> Result<ChangePlan> {
        plan_of_with(args, "")
    }

    #[test]
    fn a_secret_for_an_arc_instance_is_a_usage_error() {
        for flag in [&["--secret", "s"][..], &["--generate"]] {
            let args: Vec<&str> = ["auth", "sqlmi/x"].iter().chain(flag).copied().collect();
            assert_eq!(plan_of(&args).unwrap_err().exit_code(), 2, "{flag:?}");
        }
    }

    #[test]
    fn waiting_on_a_dry_run_is_a_usage_error() {
        assert_eq!(
            plan_of(&["auth", "pg/x", "--wait", "--dry-run=server"])
                .unwrap_err()
                .exit_code(),
            2
        );
    }

    #[test]
    fn a_valid_request_becomes_a_plan() {
        let p = plan_of(&[
            "auth",
            "ms/mssql-demo",
            "--secret",
            "new-auth",
            "--timeout",
            "2m",
            "--wait",
        ])
        .unwrap();
        let t = p.selection.single().unwrap();
        assert_eq!(t.engine.kind, "MSSQLServer");
        assert_eq!(p.credential, NewCredential::Secret("new-auth".into()));
        let one = p.plan_for(t.clone(), "demo");
        assert_eq!(one.wait_bound(), std::time::Duration::from_secs(120));
        assert_eq!(p.action, Action::Rotate);
    }

    #[test]
    fn the_password_from_stdin_loses_its_line_ending_only_and_never_prints() {
        let p = plan_of_with(&["auth", "kf/k", "--password-stdin"], " Pass word 1 \r\n").unwrap();
        let NewCredential::Supplied { password, username } = &p.credential else {
            panic!()
        };
        assert_eq!(password.expose(), " Pass word 1 ");
        assert!(username.is_none());
        assert!(!format!("{p:?}").contains("Pass word"));
        let e = plan_of_with(&["auth", "kf/k", "--password-stdin"], "\n").unwrap_err();
        assert!(e.to_string().contains("empty password"), "{e}");
    }

    #[test]
    fn a_weak_password_from_stdin_is_refused_before_reading_any_kubeconfig() {
        let e = plan_of_with(&["auth", "ms/m", "--password-stdin"], "alllowercase1\n").unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("upper-case"), "{e}");
        assert!(!e.to_string().contains("alllowercase1"));
        let e = plan_of_with(&["auth", "hdb/h", "--password-stdin"], "1Abcdefgh\n").unwrap_err();
        assert!(e.to_string().contains("start with a letter"), "{e}");
        let e = plan_of_with(&["auth", "neo/n", "--password-stdin"], "short1\n").unwrap_err();
        assert!(e.to_string().contains("at least 8"), "{e}");
    }

    #[test]
    fn a_username_other_than_the_fixed_one_is_refused() {
        let e = plan_of_with(
            &["auth", "pg/p", "--password-stdin", "--username", "alice"],
            "Secret123\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("\"postgres\""), "{e}");
        let e = plan_of(&["auth", "es/a", "es/b", "--generate", "--username", "bob"]).unwrap_err();
        assert!(e.to_string().contains("\"elastic\""), "{e}");
        assert!(plan_of(&["auth", "kf/k", "--generate", "--username", "bob"]).is_ok());
        let e = plan_of(&["auth", "kf/k", "--username", "bob"]).unwrap_err();
        assert!(e.to_string().contains("goes with"), "{e}");
    }

    #[test]
    fn one_supplied_credential_cannot_serve_several_databases_but_generate_can() {
        let e = plan_of(&["auth", "pg/a", "pg/b", "--secret", "s"]).unwrap_err();
        assert!(e.to_string().contains("exactly one"), "{e}");
        assert!(plan_of_with(&["auth", "--all", "--password-stdin"], "Abcdefg12\n").is_err());
        assert!(plan_of(&["auth", "pg/a", "pg/b", "--generate"]).is_ok());
    }
}
