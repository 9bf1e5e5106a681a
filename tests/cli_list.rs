//! `kubectl rotate list` against the sandbox: namespaces and selectors, `--older-than` exit
//! codes both ways, certificate expiry, and the requests it makes (no GET per database).

// NB: the sandbox store's `modify` closures return its `ApiError` (a Kubernetes Status body).
#![allow(clippy::result_large_err)]

mod cli_support;

use base64::Engine as _;
use cli_support::Env;
use rotate_sandbox::fixtures::Db;
use rotate_sandbox::store::Part;
use serde_json::json;

/// Sets a database's `status.authSecret.lastUpdateTimestamp` (when it was last rotated).
fn rotated_at(env: &Env, kind: &str, ns: &str, name: &str, at: &str) {
    let shared = env.sb.shared();
    let def = shared.registry.find_kind("kubedb.com", kind).unwrap();
    shared
        .store
        .modify(def, ns, name, Part::Status, false, |cur| {
            let mut n = cur.clone();
            n["status"]["authSecret"]["lastUpdateTimestamp"] = json!(at);
            Ok(n)
        })
        .unwrap();
}

#[test]
fn list_shows_every_database_of_the_namespace_and_all_namespaces_with_a_flag() {
    let env = Env::demo();
    Db::new("MySQL", "team-a", "orders")
        .label("team", "a")
        .insert(env.sb.shared())
        .unwrap();
    let out = env.rotate(&["list"]);
    out.expect(0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines[0],
        "KIND                 NAME         PHASE   SECRET                    LAST ROTATED           PASSWORD AGE   PREV KEPT   IN FLIGHT"
    );
    // The demo namespace's five databases (MSSQLServer, MariaDB, Postgres, Redis, Arc).
    assert_eq!(lines.len(), 6, "{}", out.stdout);
    assert!(
        lines[1].starts_with("MSSQLServer          mssql-demo   Ready   mssql-demo-auth"),
        "{}",
        lines[1]
    );
    assert!(
        lines[5].starts_with(
            "SqlManagedInstance   sqlmi-demo   Ready   sqlmi-demo-login-secret   <none>"
        ),
        "{}",
        lines[5]
    );
    assert!(lines[1].ends_with("no          <none>"), "{}", lines[1]);

    let all = env.rotate(&["list", "-A", "-o", "json"]).expect(0).json();
    let names: Vec<(&str, &str)> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["metadata"]["namespace"].as_str().unwrap(),
                i["metadata"]["name"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        names,
        vec![
            ("demo", "mssql-demo"),
            ("demo", "md-demo"),
            ("demo", "pg-demo"),
            ("demo", "rd-demo"),
            ("demo", "sqlmi-demo"),
            ("team-a", "orders")
        ]
    );
    assert_eq!(all["items"][5]["targetKind"], "MySQL");
    assert_eq!(all["items"][5]["prevKept"], false);
    for i in all["items"].as_array().unwrap() {
        assert_eq!(i["apiVersion"], "rotate.kubectl.dev/v1alpha1", "{i}");
        assert_eq!(i["kind"], "Credential", "{i}");
        assert!(
            i.get("name").is_none() && i.get("namespace").is_none(),
            "{i}"
        );
    }

    let sel = env.rotate(&["list", "-A", "-l", "team=a", "-o", "name"]);
    assert_eq!(sel.expect(0).stdout, "mysql.kubedb.com/orders\n");
    env.assert_no_password_printed();
}

#[test]
fn list_says_when_a_previous_credential_is_kept_after_a_rotation() {
    let env = Env::demo();
    env.rotate(&["auth", "pg/pg-demo", "--wait"]).expect(0);
    let v = env.rotate(&["list", "-o", "json"]).expect(0).json();
    let pg = cli_support::item_named(&v, "pg-demo");
    assert_eq!(pg["prevKept"], true);
    assert!(pg["passwordAgeSeconds"].as_i64().unwrap() < 60);
    env.assert_no_password_printed();
}

#[test]
fn list_older_than_exits_zero_when_none_are_stale_and_one_when_some_remain() {
    let env = Env::demo();
    let fresh = env.rotate(&["list", "-A", "--older-than", "90d"]);
    fresh.expect(0);
    assert_eq!(fresh.stdout, "");
    assert!(
        fresh
            .stderr
            .contains("No databases with credentials older than 90d."),
        "{}",
        fresh.stderr
    );

    rotated_at(&env, "Postgres", "demo", "pg-demo", "2025-01-01T00:00:00Z");
    let stale = env.rotate(&["list", "-A", "--older-than", "90d"]);
    stale.expect(1);
    let lines: Vec<&str> = stale.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "only pg-demo: {}", stale.stdout);
    assert!(
        lines[1].starts_with("demo        Postgres   pg-demo"),
        "{}",
        lines[1]
    );
    assert!(
        stale
            .stderr
            .contains("error: 1 database(s) have credentials older than 90d"),
        "{}",
        stale.stderr
    );
    // The same gate in JSON for scripts, and a bad age is a usage error.
    let v = env.rotate(&["list", "-A", "--older-than", "2w", "-o", "json"]);
    assert_eq!(v.expect(1).json()["items"].as_array().unwrap().len(), 1);
    env.rotate(&["list", "--older-than", "soon"]).expect(2);
}

/// A self-signed certificate that expires `days` from now, as a base64 `tls.crt`.
fn cert_expiring_in(days: i64) -> String {
    let end = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * days + 12);
    let d = end.to_zoned(jiff::tz::TimeZone::UTC).date();
    let mut params = rcgen::CertificateParams::new(vec!["pg-demo.demo.svc".to_string()]).unwrap();
    params.not_after = rcgen::date_time_ymd(i32::from(d.year()), d.month() as u8, d.day() as u8);
    let key = rcgen::KeyPair::generate().unwrap();
    let pem = params.self_signed(&key).unwrap().pem();
    base64::engine::general_purpose::STANDARD.encode(pem)
}

#[test]
fn the_earliest_certificate_expiry_shows_in_list_wide_and_status_with_its_severity() {
    let env = Env::demo();
    let shared = env.sb.shared();
    let secrets = shared.registry.find("", "v1", "secrets").unwrap();
    for (name, days) in [("pg-demo-server-tls", 200), ("pg-demo-client-tls", 20)] {
        shared
            .store
            .create(
                secrets,
                "demo",
                json!({"metadata": {"name": name}, "type": "kubernetes.io/tls",
                       "data": {"tls.crt": cert_expiring_in(days), "tls.key": "c2VjcmV0LWtleQ=="}}),
                false,
            )
            .unwrap();
    }
    let def = shared.registry.find_kind("kubedb.com", "Postgres").unwrap();
    shared
        .store
        .modify(def, "demo", "pg-demo", Part::Main, false, |cur| {
            let mut n = cur.clone();
            n["spec"]["tls"] = json!({"issuerRef": {"name": "ca", "kind": "Issuer", "apiGroup": "cert-manager.io"},
                "certificates": [{"alias": "server", "secretName": "pg-demo-server-tls"},
                                 {"alias": "client", "secretName": "pg-demo-client-tls"}]});
            Ok(n)
        })
        .unwrap();
    let wide = env.rotate(&["list", "-o", "wide"]);
    let row = wide
        .expect(0)
        .stdout
        .lines()
        .find(|l| l.starts_with("Postgres"))
        .unwrap()
        .to_string();
    // NB: rcgen takes a date, so the expiry is midnight UTC: 19 or 20 days away.
    assert!(row.contains("d, critical)   "), "{row}");
    let status = env
        .rotate(&["status", "pg/pg-demo", "-o", "json"])
        .expect(0)
        .json();
    assert_eq!(status["tls"]["secret"], "pg-demo-client-tls");
    assert_eq!(status["tls"]["severity"], "critical");
    let days = status["tls"]["daysLeft"].as_i64().unwrap();
    assert!((19..=20).contains(&days), "{status:#}");
    let table = env
        .rotate(&["status", "pg/pg-demo"])
        .expect(0)
        .stdout
        .clone();
    assert!(
        table.contains(&format!("({days}d, critical) in secret pg-demo-client-tls")),
        "{table}"
    );
}

#[test]
fn list_across_namespaces_lists_each_kind_once_and_never_gets_a_database_or_secret() {
    let env = Env::demo();
    for i in 0..12 {
        let ns = if i % 2 == 0 { "team-a" } else { "team-b" };
        let kind = ["Postgres", "MySQL", "MongoDB"][i % 3];
        Db::new(kind, ns, &format!("db-{i}"))
            .insert(env.sb.shared())
            .unwrap();
    }
    env.sb.faults().reset_counts();
    let v = env.rotate(&["list", "-A", "-o", "json"]).expect(0).json();
    // 12 added + the 5 demo databases.
    assert_eq!(v["items"].as_array().unwrap().len(), 17);
    let counts = env.sb.faults().request_counts();
    let gets_of = |suffix: &str| -> u64 {
        counts
            .iter()
            .filter(|(m, p, _)| m == "GET" && p.ends_with(suffix))
            .map(|(_, _, n)| n)
            .sum()
    };
    assert_eq!(
        gets_of("/postgreses"),
        1,
        "one LIST of Postgres: {counts:#?}"
    );
    assert_eq!(gets_of("/mysqls"), 1);
    assert_eq!(gets_of("/sqlmanagedinstances"), 1);
    assert_eq!(
        gets_of("/postgresopsrequests"),
        1,
        "in-flight requests of a kind with databases"
    );
    // NB: the ops requests of a kind are listed with its databases, not after them, so
    // also for a kind that turns out to have none: one cheap request off the critical path.
    assert_eq!(gets_of("/cassandraopsrequests"), 1);
    assert_eq!(
        gets_of("/api/v1/secrets"),
        1,
        "one LIST of the cluster's Secrets, with the others: {counts:#?}"
    );
    assert_eq!(gets_of("/secrets"), 1, "and no other: {counts:#?}");
    let singles: Vec<_> = counts
        .iter()
        .filter(|(_, p, _)| {
            p.contains("/secrets/") || p.contains("/postgreses/") || p.contains("/mysqls/")
        })
        .collect();
    assert!(
        singles.is_empty(),
        "no GET per database or Secret: {singles:#?}"
    );
}

#[test]
fn kinds_whose_crd_is_not_installed_are_skipped_silently() {
    // A cluster with the Arc data controller but without KubeDB.
    let env = Env::with(rotate_sandbox::Options {
        uninstalled_groups: vec!["kubedb.com".into(), "ops.kubedb.com".into()],
        ..rotate_sandbox::Options::empty()
    });
    rotate_sandbox::fixtures::SqlMi::new("demo", "mi-1")
        .insert(env.sb.shared())
        .unwrap();
    let out = env.rotate(&["list", "-A"]);
    out.expect(0);
    assert!(out.stderr.trim().is_empty(), "silently: {}", out.stderr);
    let rows: Vec<&str> = out.stdout.lines().skip(1).collect();
    assert_eq!(rows.len(), 1, "{}", out.stdout);
    assert!(
        rows[0].contains("SqlManagedInstance") && rows[0].contains("mi-1"),
        "{}",
        out.stdout
    );
    // Naming an uninstalled kind is another matter: that is an error saying what is missing.
    let out = env.rotate(&["auth", "pg/x"]);
    out.expect(4);
    assert!(
        out.stderr.contains("kubedb.com") && out.stderr.contains("not installed"),
        "{}",
        out.stderr
    );
}
