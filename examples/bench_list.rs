//! Benchmarks of the read path, in one run on one machine, printed as figures and ratios
//! (not tests: the figures depend on the machine; the ratios are what to compare):
//!
//! - `kubectl rotate list -A` against the kubectl reads that give the same information
//!   (`kubectl get <31 kinds> -A` + `kubectl get secrets -A`) and against the floor (every
//!   LIST the answer needs, sent at once from one process over one HTTP/2 connection, not
//!   decoded), at 2,000 and 10,000 Postgres databases with their auth Secrets in 20
//!   namespaces, with the sandbox's latency model at 0 and 50 ms per round trip (plus a
//!   real server's read cost per KiB);
//! - cold start: `kubectl-rotate --version` against `kubectl version --client`;
//! - each verb's requests and round trips one after another (the critical path, from the
//!   sandbox's request timeline), at 50 ms.
//!
//! ```sh
//! cargo build --release --bin kubectl-rotate
//! cargo run --release --example bench_list            # everything above
//! cargo run --release --example bench_list -- 500 7   # 500 databases, 7 runs each
//! ```
//!
//! Peak RSS is `/usr/bin/time -f %M` of the child (else the last VmHWM read from /proc
//! while polling). kubectl's discovery cache is warmed first, so kubectl is measured at its
//! best.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rotate_sandbox::fixtures::{Db, SqlMi};
use rotate_sandbox::{Latency, Options, SandboxHandle};

/// Namespaces the databases are spread over.
const NAMESPACES: usize = 20;
/// Round trips the remote server is away by.
const LATENCIES: [Duration; 2] = [Duration::ZERO, Duration::from_millis(50)];

struct Sample {
    wall: Duration,
    rss_kib: u64,
    requests: u64,
    depth: u32,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let sizes: Vec<usize> = match args.first() {
        Some(n) => vec![n.parse().expect("a number of databases")],
        None => vec![2_000, 10_000],
    };
    let runs: usize = args
        .get(1)
        .map(|r| r.parse().expect("a number of runs"))
        .unwrap_or(5);
    let plugin = plugin_path();
    let kubectl = std::env::var_os("KUBECTL")
        .map(PathBuf::from)
        .unwrap_or_else(|| "kubectl".into());
    println!(
        "plugin: {}\nkubectl: {}\nruns per tool: {runs}, medians\n",
        plugin.display(),
        kubectl.display()
    );
    println!("== list -A: the plugin, kubectl and the floor");
    println!(
        "{:>6} {:>7}  {:<44} {:>8} {:>6} {:>9} {:>10} {:>8}",
        "DBS", "LATENCY", "TOOL", "REQUESTS", "DEPTH", "WALL", "PEAK RSS", "/FLOOR"
    );
    for n in &sizes {
        for latency in LATENCIES {
            bench(*n, latency, runs, &plugin, &kubectl);
        }
    }
    cold_start(&plugin, &kubectl);
    verbs(&plugin);
}

/// target/release/kubectl-rotate, next to target/release/examples/bench_list.
fn plugin_path() -> PathBuf {
    let exe = std::env::current_exe().expect("own path");
    let p = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("kubectl-rotate"))
        .expect("target dir");
    if !p.is_file() {
        eprintln!(
            "{} is missing: run `cargo build --release --bin kubectl-rotate` first",
            p.display()
        );
        std::process::exit(2);
    }
    p
}

fn remote(latency: Duration, opts: Options) -> SandboxHandle {
    SandboxHandle::start(Options {
        latency: Latency {
            round_trip: latency,
            per_kib: Latency::REAL_PER_KIB,
        },
        ..opts
    })
    .expect("sandbox")
}

fn bench(n: usize, latency: Duration, runs: usize, plugin: &Path, kubectl: &Path) {
    let sb = remote(
        latency,
        Options {
            controllers: false,
            ..Options::empty()
        },
    );
    for i in 0..n {
        let ns = format!("team-{:02}", i % NAMESPACES);
        Db::new("Postgres", &ns, &format!("db-{i:05}"))
            .insert(sb.shared())
            .expect("fixture");
    }
    let kc = sb.kubeconfig_path().to_path_buf();
    let kinds: Vec<String> = kubectl_rotate::engines::ENGINES
        .iter()
        .map(|e| e.resource())
        .collect();
    let kinds = kinds.join(",");
    let ours = |sb: &SandboxHandle| -> Sample {
        measure(
            sb,
            &[(plugin, vec!["list", "-A", "--kubeconfig", path_str(&kc)])],
        )
    };
    let theirs = |sb: &SandboxHandle| -> Sample {
        measure(
            sb,
            &[
                (
                    kubectl,
                    vec!["get", &kinds, "-A", "--kubeconfig", path_str(&kc)],
                ),
                (
                    kubectl,
                    vec!["get", "secrets", "-A", "--kubeconfig", path_str(&kc)],
                ),
            ],
        )
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let floor = |sb: &SandboxHandle| -> Sample { runtime.block_on(floor(sb, &kc)) };
    // Warm up all three (kubectl's discovery cache, the page cache).
    ours(&sb);
    theirs(&sb);
    floor(&sb);
    let (mut a, mut b, mut f) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        a.push(ours(&sb));
        b.push(theirs(&sb));
        f.push(floor(&sb));
    }
    let floor_wall = median(f.iter().map(|s| s.wall));
    let row = |tool: &str, s: &[Sample], rss: bool| {
        let wall = median(s.iter().map(|s| s.wall));
        let peak = s.iter().map(|s| s.rss_kib).max().unwrap_or(0);
        println!(
            "{n:>6} {:>5}ms  {tool:<44} {:>8} {:>6} {:>9} {:>10} {:>7.2}x",
            latency.as_millis(),
            s[0].requests,
            s[0].depth,
            fmt(wall),
            if rss {
                format!("{:.1} MiB", peak as f64 / 1024.0)
            } else {
                "-".into()
            },
            wall.as_secs_f64() / floor_wall.as_secs_f64()
        );
    };
    row("kubectl rotate list -A", &a, true);
    row("kubectl get <31 kinds> -A + get secrets -A", &b, true);
    row("floor: every LIST at once, not decoded", &f, false);
}

/// Every LIST `list -A` needs (each installed kind, its ops requests, the Secrets), sent at
/// once over one fresh connection (the plugin's own HTTP/2 client), bodies read, not
/// decoded. Discovery is left out: the floor knows the URLs.
async fn floor(sb: &SandboxHandle, kc: &Path) -> Sample {
    use kubectl_rotate::api::read::collection_url;
    let args = kubectl_rotate::cli::KubeArgs {
        kubeconfig: Some(kc.to_path_buf()),
        ..Default::default()
    };
    let sink = kubectl_rotate::context::discard();
    let ctx = kubectl_rotate::context::Ctx::connect(&args, &sink)
        .await
        .expect("connect");
    let kinds = kubectl_rotate::api::discovery::installed(&ctx)
        .await
        .expect("discovery");
    let mut urls: Vec<String> = vec!["/api/v1/secrets".into()];
    for k in &kinds {
        urls.push(collection_url(&k.ar, None));
        urls.extend(k.ops_ar.as_ref().map(|o| collection_url(o, None)));
    }
    // A fresh client: the floor pays for its own connection, as each command does.
    let ctx = kubectl_rotate::context::Ctx::connect(&args, &sink)
        .await
        .expect("connect");
    sb.faults().reset_counts();
    let start = Instant::now();
    let bodies = futures::future::join_all(urls.iter().map(|u| {
        let req = http::Request::get(u.as_str())
            .body(Vec::new())
            .expect("request");
        ctx.client.request_text(req)
    }))
    .await;
    let wall = start.elapsed();
    assert!(bodies.iter().all(Result::is_ok), "every LIST answered");
    Sample {
        wall,
        rss_kib: 0,
        requests: sb.faults().total_requests(),
        depth: sb.faults().critical_path(),
    }
}

/// `--version` against `kubectl version --client`, 20 runs each.
fn cold_start(plugin: &Path, kubectl: &Path) {
    let time = |bin: &Path, args: &[&str]| median((0..20).map(|_| run(bin, args).0));
    let (ours, theirs) = (
        time(plugin, &["--version"]),
        time(kubectl, &["version", "--client"]),
    );
    println!("\n== cold start, median of 20");
    println!(
        "kubectl-rotate --version       {:>8.1} ms",
        ours.as_secs_f64() * 1000.0
    );
    println!(
        "kubectl version --client       {:>8.1} ms",
        theirs.as_secs_f64() * 1000.0
    );
    println!(
        "ratio                          {:>8.2}x",
        ours.as_secs_f64() / theirs.as_secs_f64()
    );
}

/// Each verb on the demo fixtures at 50 ms: requests, the round trips one after another
/// before its watch (all of them for a verb without one), wall time and peak RSS.
fn verbs(plugin: &Path) {
    let sb = remote(
        Duration::from_millis(50),
        Options {
            operator_delay: Duration::from_millis(100),
            ..Options::demo()
        },
    );
    SqlMi::new("demo", "sqlmi-bench").insert(sb.shared()).ok();
    let kc = sb.kubeconfig_path().to_path_buf();
    println!("\n== requests and round trips per verb, 50 ms away (demo fixtures)");
    println!(
        "{:<40} {:>8} {:>16} {:>9} {:>10}",
        "COMMAND", "REQUESTS", "DEPTH (<WATCH)", "WALL", "PEAK RSS"
    );
    for args in [
        &["list", "-A"][..],
        &["prev", "pg/pg-demo"],
        &["status", "pg/pg-demo"],
        &["history", "pg/pg-demo"],
        &["auth", "pg/pg-demo", "--wait"],
        &["rollback", "pg/pg-demo", "--wait"],
        &["auth", "sqlmi/sqlmi-demo", "--wait"],
        &["auth", "pg/pg-demo", "--dry-run=server"],
    ] {
        // NB: a request's name derives from the auth Secret's last update, in seconds.
        std::thread::sleep(Duration::from_millis(1100));
        sb.faults().reset_counts();
        let mut full = args.to_vec();
        full.extend(["--kubeconfig", path_str(&kc)]);
        let (wall, rss) = run(plugin, &full);
        let timeline = sb.faults().timeline();
        let depth = sb.faults().depth_before_watch();
        println!(
            "{:<40} {:>8} {:>16} {:>9} {:>6.1} MiB",
            format!("kubectl rotate {}", args.join(" ")),
            timeline.len(),
            depth,
            fmt(wall),
            rss as f64 / 1024.0
        );
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn fmt(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn median(it: impl Iterator<Item = Duration>) -> Duration {
    let mut v: Vec<Duration> = it.collect();
    v.sort();
    v[v.len() / 2]
}

/// Runs the commands one after the other: total wall time, the largest peak RSS, requests.
fn measure(sb: &SandboxHandle, cmds: &[(&Path, Vec<&str>)]) -> Sample {
    sb.faults().reset_counts();
    let mut wall = Duration::ZERO;
    let mut rss = 0;
    for (bin, args) in cmds {
        let (w, r) = run(bin, args);
        wall += w;
        rss = rss.max(r);
    }
    Sample {
        wall,
        rss_kib: rss,
        requests: sb.faults().total_requests(),
        depth: sb.faults().critical_path(),
    }
}

/// One process: wall time and peak RSS in KiB.
fn run(bin: &Path, args: &[&str]) -> (Duration, u64) {
    let time = Path::new("/usr/bin/time");
    let tmp = std::env::temp_dir().join(format!("bench-list-rss-{}", std::process::id()));
    let mut cmd = if time.is_file() {
        let mut c = Command::new(time);
        c.arg("-f").arg("%M").arg("-o").arg(&tmp).arg(bin);
        c
    } else {
        Command::new(bin)
    };
    cmd.args(args)
        .env_remove("KUBECONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let start = Instant::now();
    let mut child = cmd.spawn().expect("spawn");
    let mut hwm = 0;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        hwm = hwm.max(vm_hwm(child.id()).unwrap_or(0));
        std::thread::sleep(Duration::from_millis(2));
    };
    let wall = start.elapsed();
    assert!(
        status.success() || status.code() == Some(1),
        "{} {args:?}: {status}",
        bin.display()
    );
    let rss = std::fs::read_to_string(&tmp)
        .ok()
        .and_then(|s| s.lines().last()?.trim().parse().ok())
        .unwrap_or(hwm);
    let _ = std::fs::remove_file(&tmp);
    (wall, rss)
}

/// VmHWM (peak RSS) of a running process, in KiB.
fn vm_hwm(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
