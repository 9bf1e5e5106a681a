//! Several databases in one command: names, `-l`, `--all`, `-A`, `--parallel`; one
//! summary table, failures isolated, the request budget per database.

mod cli_support;

use std::time::Duration;

use cli_support::Env;
use kubectl_rotate::engines::ENGINES;
use rotate_sandbox::fixtures::Db;
use rotate_sandbox::Options;

/// `n` databases spread over every KubeDB kind and `namespaces` namespaces (`team-0`, ...).
fn spread(env: &Env, n: usize, namespaces: usize) {
    let kinds: Vec<_> = ENGINES.iter().filter(|e| e.ops().is_some()).collect();
    for i in 0..n {
        let e = kinds[i % kinds.len()];
        let ns = format!("team-{}", i % namespaces);
        Db::new(e.kind, &ns, &format!("{}-{i}", e.short()))
            .insert(env.sb.shared())
            .unwrap();
    }
}

/// Rows of a summary table whose PHASE is `phase`.
fn rows_in_phase(table: &str, phase: &str) -> usize {
    table
        .lines()
        .filter(|l| l.split_whitespace().nth(4) == Some(phase))
        .count()
}

#[test]
fn several_named_targets_are_rotated_in_one_call_with_one_summary_table() {
    let env = Env::demo();
    let out = env.rotate(&[
        "auth",
        "pg/pg-demo",
        "ms/mssql-demo",
        "sqlmi/sqlmi-demo",
        "--wait",
    ]);
    out.expect(0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        [
            "NAMESPACE",
            "KIND",
            "NAME",
            "REQUEST",
            "PHASE",
            "DURATION",
            "MESSAGE"
        ],
        "{}",
        out.stdout
    );
    assert_eq!(lines.len(), 4, "{}", out.stdout);
    for (line, name) in lines[1..]
        .iter()
        .zip(["mssql-demo", "pg-demo", "sqlmi-demo"])
    {
        assert!(
            line.contains(name),
            "sorted by kind then name: {}",
            out.stdout
        );
    }
    assert_eq!(
        rows_in_phase(&out.stdout, "Successful"),
        2,
        "{}",
        out.stdout
    );
    assert!(lines[3].contains("Ready"), "{}", out.stdout);
    env.assert_no_password_printed();
}

#[test]
fn one_failure_is_isolated_and_reported_in_its_row_and_fails_the_command() {
    let env = Env::with(Options::empty());
    for name in ["a", "b", "c"] {
        let db = Db::new("Postgres", "demo", name);
        let db = if name == "b" {
            db.phase("NotReady")
        } else {
            db
        };
        db.insert(env.sb.shared()).unwrap();
    }
    let out = env.rotate(&["auth", "pg", "a", "b", "c", "--wait"]);
    out.expect(6);
    let row = |n: &str| {
        out.stdout
            .lines()
            .find(|l| l.split_whitespace().nth(2) == Some(n))
            .unwrap_or_else(|| panic!("a row for {n}: {}", out.stdout))
            .to_string()
    };
    assert!(
        row("a").contains("Successful") && row("c").contains("Successful"),
        "{}",
        out.stdout
    );
    assert!(
        row("b").contains("Refused") && row("b").contains("is not Ready (phase NotReady)"),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr.contains("1 of 3 databases failed"),
        "{}",
        out.stderr
    );
    assert_eq!(env.ops_request_count(), 2, "nothing was created for b");
}

#[test]
fn all_without_yes_is_refused_when_nobody_can_confirm_and_nothing_is_written() {
    let env = Env::demo();
    for args in [
        &["auth", "--all"][..],
        &["auth", "-A"],
        &["rollback", "pg", "--all"],
    ] {
        let before = env.sb.faults().total_requests();
        let out = env.rotate(args);
        out.expect(2);
        assert!(
            out.stderr.contains("pass --yes"),
            "{args:?}: {}",
            out.stderr
        );
        assert_eq!(
            env.sb.faults().total_requests(),
            before,
            "{args:?}: refused before any API call"
        );
    }
    assert_eq!(env.ops_request_count(), 0);
}

#[test]
fn a_dry_run_of_all_needs_no_confirmation_and_lists_what_it_would_do() {
    let env = Env::demo();
    let out = env.rotate(&["auth", "--all", "--dry-run=client"]);
    out.expect(0);
    for name in ["mssql-demo", "pg-demo", "sqlmi-demo"] {
        assert!(out.stdout.contains(name), "{}", out.stdout);
    }
    assert!(out.stdout.contains("(dry run)"), "{}", out.stdout);
    assert!(out.stderr.contains("nothing was sent"), "{}", out.stderr);
    let v = env
        .rotate(&["auth", "--all", "--dry-run=client", "-o", "json"])
        .expect(0)
        .json();
    assert_eq!(v["kind"], "List");
    assert_eq!(env.ops_request_count(), 0);
    assert_eq!(env.sqlmi_generation(), 0);
}

#[test]
fn a_label_selector_picks_only_the_matching_databases() {
    let env = Env::with(Options::empty());
    Db::new("Postgres", "demo", "pay-pg")
        .label("team", "payments")
        .insert(env.sb.shared())
        .unwrap();
    Db::new("MySQL", "demo", "pay-my")
        .label("team", "payments")
        .insert(env.sb.shared())
        .unwrap();
    Db::new("Postgres", "demo", "other")
        .label("team", "search")
        .insert(env.sb.shared())
        .unwrap();
    let out = env.rotate(&["auth", "-l", "team=payments", "--wait", "-o", "name"]);
    out.expect(0);
    let names: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(names.len(), 2, "{}", out.stdout);
    assert!(
        names.iter().any(|n| n.contains("pay-my-rotate-auth-")),
        "{}",
        out.stdout
    );
    assert!(
        names.iter().any(|n| n.contains("pay-pg-rotate-auth-")),
        "{}",
        out.stdout
    );
    let out = env.rotate(&[
        "auth",
        "pg",
        "-l",
        "team=payments",
        "--dry-run=client",
        "-o",
        "name",
    ]);
    assert_eq!(
        out.expect(0).stdout.lines().count(),
        1,
        "TYPE narrows the selection"
    );
}

#[test]
fn all_namespaces_with_yes_rotates_every_database_everywhere_and_rolls_them_back() {
    let env = Env::with(Options::empty());
    spread(&env, 6, 3);
    let out = env.rotate(&["auth", "--all", "-A", "--yes", "--wait", "--parallel", "3"]);
    out.expect(0);
    assert_eq!(
        rows_in_phase(&out.stdout, "Successful"),
        6,
        "{}",
        out.stdout
    );
    for ns in ["team-0", "team-1", "team-2"] {
        assert!(out.stdout.contains(ns), "{}", out.stdout);
    }
    let out = env.rotate(&["rollback", "-A", "--yes", "--wait"]);
    out.expect(0);
    assert_eq!(
        rows_in_phase(&out.stdout, "Successful"),
        6,
        "{}",
        out.stdout
    );
    env.assert_no_password_printed();
}

#[test]
fn secret_and_password_stdin_are_refused_for_several_databases() {
    let env = Env::demo();
    let out = env.rotate(&["auth", "pg/pg-demo", "ms/mssql-demo", "--secret", "s"]);
    out.expect(2);
    assert!(out.stderr.contains("exactly one"), "{}", out.stderr);
}

/// Requests the plugin made, by method, leaving out watches.
fn requests_outside_watches(env: &Env) -> u64 {
    env.sb
        .faults()
        .request_counts()
        .into_iter()
        .filter(|(m, _, _)| m != "WATCH")
        .map(|(_, _, n)| n)
        .sum()
}

#[test]
fn bulk_rotation_stays_within_nine_api_requests_per_database_outside_the_watch() {
    const DATABASES: usize = 20;
    let env = Env::with(Options {
        operator_delay: Duration::from_millis(50),
        ..Options::empty()
    });
    spread(&env, DATABASES, 4);
    env.sb.faults().reset_counts();
    let out = env.rotate(&["auth", "--all", "-A", "--yes", "--wait", "--parallel", "8"]);
    out.expect(0);
    assert_eq!(
        rows_in_phase(&out.stdout, "Successful"),
        DATABASES,
        "{}",
        out.stdout
    );
    let per_db = requests_outside_watches(&env) as f64 / DATABASES as f64;
    let counts = env.sb.faults().request_counts();
    // Per database: the lock (read the Lease, take it, give it up: on a first rotation the
    // read finds none, on later ones it saves a create that would collide), the auth
    // Secret's GET, the ops request and its audit Event; shared: discovery, one LIST of
    // databases per installed kind (about 30, so 1.5 per database here) and of ops
    // requests per kind with databases.
    assert!(
        per_db <= 9.0,
        "{per_db:.2} requests per database outside watches:\n{counts:#?}"
    );
    eprintln!("{per_db:.2} API requests per database outside watches");
    // One discovery, one LIST of databases and of ops requests per kind, one ops request
    // each (plus the audit Event each write records).
    let ops_posts: u64 = counts
        .iter()
        .filter(|(m, p, _)| m == "POST" && p.contains("/apis/ops.kubedb.com/"))
        .map(|(_, _, n)| n)
        .sum();
    assert_eq!(ops_posts, DATABASES as u64, "{counts:#?}");
    let watches = counts.iter().filter(|(m, _, _)| m == "WATCH").count();
    assert!(
        watches <= 30,
        "one watch per kind, not per request: {counts:#?}"
    );
}

/// Runs the plugin on a pseudo-terminal (util-linux `script`), typing `answer` at the prompt.
fn on_a_terminal(env: &Env, args: &[&str], answer: &str) -> cli_support::Out {
    use std::io::Write;
    let mut line = vec![cli_support::BIN.to_string()];
    line.extend(args.iter().map(|a| a.to_string()));
    line.push("--kubeconfig".into());
    line.push(env.kubeconfig().display().to_string());
    // NB: no argument here needs shell quoting (paths and flags only).
    let mut child = std::process::Command::new("script")
        .args(["-qec", &line.join(" "), "/dev/null"])
        .env_remove("KUBECONFIG")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("util-linux script");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{answer}\n").as_bytes())
        .unwrap();
    let out = cli_support::Out::from(child.wait_with_output().unwrap());
    env.record(&out);
    out
}

#[test]
fn on_a_terminal_all_asks_first_and_only_a_yes_rotates() {
    let env = Env::demo();
    let out = on_a_terminal(&env, &["auth", "--all", "-n", "demo"], "n");
    assert!(
        out.stdout
            .contains("Rotate 5 databases in 1 namespace? [y/N]"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("not confirmed; nothing was changed"),
        "{}",
        out.stdout
    );
    assert_ne!(out.code, 0);
    assert_eq!(env.ops_request_count(), 0, "a no changes nothing");
    assert_eq!(env.sqlmi_generation(), 0);

    let out = on_a_terminal(&env, &["auth", "--all", "-n", "demo"], "y");
    out.expect(0);
    assert_eq!(
        env.ops_request_count(),
        4,
        "one ops request per KubeDB database"
    );
    assert_eq!(env.sqlmi_generation(), 1, "and the Arc instance rotated");
    env.assert_no_password_printed();
}
