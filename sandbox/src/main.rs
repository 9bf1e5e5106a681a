//! `rotate-sandbox serve --kubeconfig PATH [--fixtures demo] [--operator-delay DURATION]
//! [--latency DURATION] [--read-cost-per-kib real|DURATION] [--user NAME[=GROUP,...]]`
//!
//! Writes a kubeconfig (context `sandbox`, namespace `demo`; `sandbox-bob`; `sandbox-NAME`
//! per `--user`), prints `ready <url>` on stdout once it accepts connections, and runs
//! until SIGINT/SIGTERM.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "rotate-sandbox",
    version,
    about = "A local Kubernetes API server with simulated KubeDB and Arc controllers"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve the API on 127.0.0.1 until interrupted.
    Serve {
        /// Where to write the kubeconfig for this server.
        #[arg(long)]
        kubeconfig: PathBuf,
        /// Objects to start with.
        #[arg(long, value_enum, default_value = "demo")]
        fixtures: FixturesArg,
        /// Delay between the simulated operators' steps (e.g. 500ms, 1s, 2m).
        #[arg(long, default_value = "500ms", value_parser = parse_duration)]
        operator_delay: Duration,
        /// Port on 127.0.0.1 (0 picks a free one).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Bind a database of namespace demo to a real server, e.g.
        /// pg-demo=postgresql://postgres:PASSWORD@127.0.0.1:5432 (also mysql://, redis://;
        /// over TLS ?sslmode=require, ?ssl=true, rediss://): its auth Secret gets that
        /// password, its pods forward to the server, and rotations change the password
        /// there. Repeatable.
        #[arg(long = "real-db", value_name = "NAME=URL")]
        real_db: Vec<String>,
        /// A remote server's round trip, added to every request (e.g. 50ms).
        #[arg(long, default_value = "0ms", value_parser = parse_duration)]
        latency: Duration,
        /// A real server's read cost per KiB of each GET/LIST answer; "real" is what
        /// kube-apiserver 1.32 with etcd took (78us per KiB), 0 none.
        #[arg(long, default_value = "0ms", value_parser = parse_cost)]
        read_cost_per_kib: Duration,
        /// Add a user, e.g. alice or alice=team-a,team-b (groups), with a context
        /// sandbox-NAME in the kubeconfig. Bound to nothing: bind it as the admin
        /// (kubectl create rolebinding ... --user=alice). Repeatable.
        #[arg(long = "user", value_name = "NAME[=GROUP,...]")]
        users: Vec<String>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum FixturesArg {
    Demo,
    Empty,
    Consumers,
}

/// `500ms`, `2s`, `1m`, or plain seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((s, "s"), |i| s.split_at(i));
    let n: f64 = num
        .parse()
        .map_err(|_| format!("invalid duration {s:?}: use e.g. 500ms, 2s, 1m"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("invalid duration unit in {s:?}: use ms, s, m or h")),
    };
    Ok(Duration::from_secs_f64(secs))
}

/// `real`, or a duration.
fn parse_cost(s: &str) -> Result<Duration, String> {
    match s {
        "real" => Ok(rotate_sandbox::Latency::REAL_PER_KIB),
        _ => parse_duration(s),
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let Cmd::Serve {
        kubeconfig,
        fixtures,
        operator_delay,
        port,
        real_db,
        latency,
        read_cost_per_kib,
        users,
    } = cli.cmd;
    let opts = rotate_sandbox::Options {
        port,
        kubeconfig: Some(kubeconfig.clone()),
        fixtures: match fixtures {
            FixturesArg::Demo => rotate_sandbox::Fixtures::Demo,
            FixturesArg::Empty => rotate_sandbox::Fixtures::Empty,
            FixturesArg::Consumers => rotate_sandbox::Fixtures::Consumers,
        },
        operator_delay,
        controllers: true,
        uninstalled_groups: vec![],
        latency: rotate_sandbox::Latency {
            round_trip: latency,
            per_kib: read_cost_per_kib,
        },
        websocket_upgrade_needs_create: false,
    };
    let server = match rotate_sandbox::Server::bind(opts).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot start the sandbox: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    for spec in &real_db {
        let bound = spec
            .split_once('=')
            .ok_or_else(|| format!("--real-db {spec:?}: use NAME=URL"))
            .and_then(|(name, url)| Ok((name, rotate_sandbox::realdb::Url::parse(url)?)))
            .and_then(|(name, url)| {
                rotate_sandbox::realdb::bind(&server.shared, "demo", name, &url)
                    .map_err(|e| e.message)
            });
        if let Err(e) = bound {
            // NB: the URL holds a password: never echo it back.
            eprintln!(
                "error: cannot bind --real-db {}: {e}",
                spec.split('=').next().unwrap_or("")
            );
            return std::process::ExitCode::from(2);
        }
    }
    let mut tokens = vec![];
    for spec in &users {
        let (name, groups) = spec.split_once('=').unwrap_or((spec, ""));
        let groups: Vec<&str> = groups.split(',').filter(|g| !g.is_empty()).collect();
        // NB: a service account's name gets its groups, as its tokens authenticate it.
        let mut user = match name
            .strip_prefix("system:serviceaccount:")
            .and_then(|rest| rest.split_once(':'))
        {
            Some((ns, sa)) => rotate_sandbox::auth::UserInfo::service_account(ns, sa),
            None => rotate_sandbox::auth::UserInfo::new(name, &[]),
        };
        user.groups.extend(groups.iter().map(|g| g.to_string()));
        tokens.push((name.to_string(), server.shared.users.add(user)));
    }
    let url = format!("https://127.0.0.1:{}", server.addr.port());
    if let Err(e) = rotate_sandbox::kubeconfig::write_with_users(
        &kubeconfig,
        &url,
        &server.tls_ca_pem,
        rotate_sandbox::ADMIN_TOKEN,
        &tokens,
    ) {
        eprintln!(
            "error: cannot write the kubeconfig {}: {e}",
            kubeconfig.display()
        );
        return std::process::ExitCode::from(1);
    }
    let mut out = std::io::stdout();
    let _ = writeln!(out, "ready {url}");
    let _ = out.flush();
    server.run_until(shutdown_signal()).await;
    std::process::ExitCode::SUCCESS
}

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
