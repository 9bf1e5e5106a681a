//! kubectl's `-v=N` on every verb, against the sandbox: at 6 one line per API request the
//! sandbox served (a watch too), at 7 the headers with the token masked, at 8 the bodies
//! with Secret values redacted; the flag's spellings; and at no level, 0 to 8, a password
//! or the bearer token in anything printed (`prev`, `auth --password-stdin --wait`,
//! `auth --generate --wait`, `rollback --wait`, `verify`).

mod cli_support;

use std::collections::BTreeMap;

use cli_support::{Env, Out, AUTH_PG_STDIN};
use rotate_sandbox::ADMIN_TOKEN;

/// `verify` of pg-demo: no database answers in the sandbox, so the port-forwards are made
/// and the logins fail (exit 8).
const VERIFY_PG: &[&str] = &[
    "verify",
    "pg/pg-demo",
    "-n",
    "demo",
    "--login-timeout",
    "2s",
];

/// `auth` of mssql-demo with a password the plugin generates, followed to the end.
const AUTH_MS_GENERATE: &[&str] = &[
    "auth",
    "ms/mssql-demo",
    "-n",
    "demo",
    "--generate",
    "--wait",
];

/// A klog line, `I1201 12:00:00.123456   12345 round_trippers.go:560] MSG`: its source
/// (`round_trippers.go:560`) and message; `None` for any other line. Strict on the header's
/// shape, so a change to it fails here.
fn klog(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix('I')?;
    let stamp = rest.get(..20)?;
    let shape = "dddd dd:dd:dd.dddddd";
    let stamp_ok = stamp.chars().zip(shape.chars()).all(|(c, s)| match s {
        'd' => c.is_ascii_digit(),
        s => c == s,
    });
    let pid = rest.get(20..29)?;
    let pid_ok = pid.starts_with(' ')
        && pid.ends_with(' ')
        && pid[1..8].trim_start().chars().all(|c| c.is_ascii_digit())
        && !pid[1..8].trim_start().is_empty();
    assert!(
        stamp_ok && pid_ok,
        "a klog line with a bad header: {line:?}"
    );
    rest[29..].split_once("] ")
}

/// The klog lines of `text`, as (source, message).
fn klog_lines(text: &str) -> Vec<(&str, &str)> {
    text.lines().filter_map(klog).collect()
}

/// What the sandbox served since its counts were reset, by (method, path).
fn served(env: &Env) -> BTreeMap<(String, String), u64> {
    env.sb
        .faults()
        .request_counts()
        .into_iter()
        .map(|(m, p, n)| ((m, p), n))
        .collect()
}

/// The requests `-v=6` logged, by (method, path), a watch as method WATCH (as the sandbox
/// counts them); each line must be `METHOD URL STATUS in N milliseconds`.
fn logged(o: &Out) -> BTreeMap<(String, String), u64> {
    let mut counts = BTreeMap::new();
    for (src, msg) in klog_lines(&o.stderr) {
        assert_eq!(
            src, "round_trippers.go:560",
            "only request lines at 6: {msg}"
        );
        let (method, rest) = msg.split_once(' ').expect("METHOD URL ...");
        let (url, rest) = rest.split_once(' ').expect("URL STATUS ...");
        let ms = rest
            .strip_suffix(" milliseconds")
            .and_then(|r| r.rsplit_once(" in "));
        let Some((status, ms)) = ms else {
            panic!("not `STATUS in N milliseconds`: {msg}")
        };
        assert!(ms.parse::<u64>().is_ok(), "{msg}");
        let code = status.split(' ').next().unwrap_or_default();
        assert!(code.len() == 3 && code.parse::<u16>().is_ok(), "{msg}");
        let host_and_rest = url
            .strip_prefix("https://")
            .unwrap_or_else(|| panic!("a full URL: {msg}"));
        let rest = &host_and_rest[host_and_rest.find('/').expect("a path")..];
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let watch = query.split('&').any(|kv| kv == "watch=true");
        let method = if watch { "WATCH" } else { method };
        *counts
            .entry((method.to_string(), path.to_string()))
            .or_default() += 1;
    }
    counts
}

#[test]
fn at_6_each_request_the_sandbox_served_is_one_line_with_its_status_and_time() {
    let env = Env::demo();
    let verbs: [(&[&str], i32); 8] = [
        (&["prev", "pg/pg-demo", "-n", "demo"], 0),
        (&["status", "pg/pg-demo", "-n", "demo"], 0),
        (&["list", "-A"], 0),
        (
            &["auth", "pg/pg-demo", "-n", "demo", "--generate", "--wait"],
            0,
        ),
        (&["auth", "sqlmi/sqlmi-demo", "-n", "demo", "--wait"], 0),
        (&["rollback", "sqlmi/sqlmi-demo", "-n", "demo", "--wait"], 0),
        (&["history", "pg/pg-demo", "-n", "demo"], 0),
        (VERIFY_PG, 8),
    ];
    for (args, code) in verbs {
        env.sb.faults().reset_counts();
        let o = env.rotate(&[args, &["-v=6"]].concat());
        let served = served(&env);
        o.expect(code);
        assert_eq!(logged(&o), served, "{args:?}:\n{}", o.stderr);
        let total: u64 = served.values().sum();
        assert!(total >= 2, "{args:?}: {served:?}");
        // verify's port-forwards (upgraded to WebSocket) are requests like the others.
        let forwards = served.keys().any(|(_, p)| p.ends_with("/portforward"));
        assert_eq!(forwards, args[0] == "verify", "{args:?}: {served:?}");
    }
    // A watch is logged once, when its response headers arrive.
    env.sb.faults().reset_counts();
    let o = env.rotate(&["auth", "pg/pg-demo", "-n", "demo", "--wait", "-v=6"]);
    o.expect(0);
    assert!(served(&env).keys().any(|(m, _)| m == "WATCH"));
    assert_eq!(logged(&o), served(&env), "{}", o.stderr);
    // Nothing without -v, nor below 6.
    for v in [&[][..], &["-v=5"]] {
        let o = env.rotate(&[&["prev", "pg/pg-demo", "-n", "demo"][..], v].concat());
        o.expect(0);
        assert!(klog_lines(&o.stderr).is_empty(), "{v:?}: {}", o.stderr);
    }
    env.assert_no_password_printed();
}

#[test]
fn the_flag_is_kubectl_s_v_after_every_verb_and_takes_a_number() {
    let env = Env::demo();
    for flag in [&["--v=6"][..], &["-v=6"], &["-v", "6"], &["--v", "6"]] {
        let o = env.rotate(&[&["prev", "pg/pg-demo", "-n", "demo"][..], flag].concat());
        o.expect(0);
        let lines = klog_lines(&o.stderr);
        assert!(!lines.is_empty(), "{flag:?}: {}", o.stderr);
        assert!(lines.iter().all(|(src, _)| *src == "round_trippers.go:560"));
    }
    for verb in [
        &["auth", "pg/pg-demo"][..],
        &["rollback", "pg/pg-demo"],
        &["retry", "pg/pg-demo"],
        &["status", "pg/pg-demo"],
        &["history", "pg/pg-demo"],
        &["list"],
        &["verify", "pg/pg-demo"],
    ] {
        let o = env.rotate(&[verb, &["-v=x"]].concat());
        o.expect(2);
        assert!(
            o.stderr.contains("invalid value 'x' for '--v <N>'"),
            "{}",
            o.stderr
        );
        // A bare -v is not a count, as kubectl's: it wants its number.
        env.rotate(&[verb, &["-v"]].concat()).expect(2);
    }
    // In process too, where stderr and the log share one buffer.
    let o = env.run(&["prev", "pg/pg-demo", "-n", "demo", "-v=6"], "", false);
    o.expect(0);
    let note = "Note: no previous credential";
    assert!(!klog_lines(&o.stderr).is_empty() && o.stderr.contains(note));
}

#[test]
fn no_password_nor_token_is_printed_at_any_level_and_7_and_8_show_what_they_say() {
    let env = Env::demo();
    let no_token = |o: &Out| {
        for text in [&o.stdout, &o.stderr] {
            assert!(
                !text.contains(ADMIN_TOKEN),
                "the bearer token was printed:\n{text}"
            );
        }
    };
    for level in 0..=8u8 {
        let v = format!("-v={level}");
        let password = format!("Stdin{level}Pw7xQ2mK9");
        let stdin = format!("{password}\n");
        let runs: Vec<Out> = vec![
            env.rotate(&["prev", "pg/pg-demo", "-n", "demo", &v]),
            env.concurrently(1, &[AUTH_PG_STDIN, &[&v]].concat(), Some(&stdin))
                .remove(0),
            env.rotate(&[AUTH_MS_GENERATE, &[&v]].concat()),
            env.rotate(&["rollback", "pg/pg-demo", "-n", "demo", "--wait", &v]),
            env.rotate(&["prev", "pg/pg-demo", "-n", "demo", &v]),
            env.rotate(&[VERIFY_PG, &[&v]].concat()),
        ];
        env.remember_passwords();
        let codes: Vec<i32> = runs.iter().map(|o| o.code).collect();
        assert_eq!(codes, [0, 0, 0, 0, 0, 8], "level {level}: {runs:#?}");
        for o in &runs {
            no_token(o);
            assert!(!o.stdout.contains(&password) && !o.stderr.contains(&password));
        }
        env.assert_no_password_printed();
        let all: String = runs.iter().map(|o| o.stderr.as_str()).collect();
        let lines = klog_lines(&all);
        let has = |src: &str, text: &str| lines.iter().any(|(s, m)| *s == src && m.contains(text));
        // So that the checks above are not empty: each level logs what it says it does.
        assert_eq!(level >= 6, !lines.is_empty(), "level {level}");
        assert_eq!(
            level == 6,
            has("round_trippers.go:560", " 200 OK in "),
            "{level}"
        );
        assert_eq!(
            level >= 7,
            has("round_trippers.go:480", "Authorization: Bearer <masked>"),
            "level {level}"
        );
        assert_eq!(
            level >= 7,
            has("round_trippers.go:581", "Response Status: 201 Created")
        );
        assert_eq!(
            level >= 8,
            has("round_trippers.go:587", "Content-Type: application/json")
        );
        // The new Secret's create, and the auth Secret's read, with their values redacted.
        let secret_sent = lines.iter().any(|(s, m)| {
            *s == "helper.go:105"
                && m.starts_with("\"Request Body\"")
                && m.contains(r#"\"kind\":\"Secret\""#)
                && m.contains(r#"\"password\":\"REDACTED\""#)
        });
        assert_eq!(level >= 8, secret_sent, "level {level}");
        assert_eq!(
            level >= 8,
            has("helper.go:105", r#"\"password.prev\":\"REDACTED\""#),
            "level {level}"
        );
        assert_eq!(
            level >= 8,
            has("helper.go:105", "body=<watch stream, not shown>")
        );
        assert_eq!(
            level >= 8,
            has("helper.go:105", "body=<upgraded connection, not shown>")
        );
        // verify's own lines: where from 2 on, the login requests (masked) from 4 on.
        assert_eq!(
            level >= 2,
            all.contains("verify: primary pod pg-demo-0"),
            "{level}"
        );
        assert_eq!(
            level >= 4,
            all.contains("password: \"********\""),
            "{level}"
        );
    }
}
