//! Benchmark: `kubectl rotate list -A` against `kubectl get <the same kinds> -A` plus
//! `kubectl get secrets -A`, on one in-process sandbox filled with N databases.
//!
//! ```sh
//! cargo build --release --bin kubectl-rotate
//! cargo run --release --example bench_list            # 2,000 and 10,000 databases
//! cargo run --release --example bench_list -- 500 7   # 500 databases, 7 runs each
//! ```
//!
//! Prints, per size and tool: requests served (the sandbox's counter), median wall time,
//! peak RSS (`/usr/bin/time -f %M`, i.e. getrusage of the child; else the last VmHWM read
//! from /proc while polling), and the ratios. Not a test: figures depend on the machine.
//! kubectl's discovery cache is warmed first, so kubectl is measured at its best.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rotate_sandbox::fixtures::Db;
use rotate_sandbox::{Options, SandboxHandle};

/// KubeDB kinds the databases are spread over (each with its auth Secret).
const KINDS: &[&str] = &[
    "Postgres",
    "MySQL",
    "MongoDB",
    "Redis",
    "MariaDB",
    "Elasticsearch",
    "MSSQLServer",
    "Kafka",
];
/// Namespaces the databases are spread over.
const NAMESPACES: usize = 20;

struct Sample {
    wall: Duration,
    rss_kib: u64,
    requests: u64,
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
        "plugin: {}\nkubectl: {}\nruns per tool: {runs}\n",
        plugin.display(),
        kubectl.display()
    );
    for n in sizes {
        bench(n, runs, &plugin, &kubectl);
    }
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

fn bench(n: usize, runs: usize, plugin: &Path, kubectl: &Path) {
    let sb = SandboxHandle::start(Options {
        controllers: false,
        ..Options::empty()
    })
    .expect("sandbox");
    let filled = Instant::now();
    for i in 0..n {
        let kind = KINDS[i % KINDS.len()];
        let ns = format!("team-{:02}", i % NAMESPACES);
        Db::new(kind, &ns, &format!("db-{i:05}"))
            .insert(sb.shared())
            .expect("fixture");
    }
    eprintln!("{n} databases loaded in {:.1?}", filled.elapsed());
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
    // Warm up both (kubectl's discovery cache, the page cache).
    ours(&sb);
    theirs(&sb);
    let mut a: Vec<Sample> = Vec::new();
    let mut b: Vec<Sample> = Vec::new();
    for _ in 0..runs {
        a.push(ours(&sb));
        b.push(theirs(&sb));
    }
    let (wa, wb) = (
        median(a.iter().map(|s| s.wall)),
        median(b.iter().map(|s| s.wall)),
    );
    let (ra, rb) = (
        a.iter().map(|s| s.rss_kib).max().unwrap_or(0),
        b.iter().map(|s| s.rss_kib).max().unwrap_or(0),
    );
    println!(
        "== {n} databases ({} kinds, {NAMESPACES} namespaces, one auth Secret each)",
        KINDS.len()
    );
    println!(
        "{:<48} {:>9} {:>12} {:>14}",
        "TOOL", "REQUESTS", "MEDIAN WALL", "PEAK RSS"
    );
    println!(
        "{:<48} {:>9} {:>12} {:>10.1} MiB",
        "kubectl rotate list -A",
        a[0].requests,
        fmt(wa),
        ra as f64 / 1024.0
    );
    println!(
        "{:<48} {:>9} {:>12} {:>10.1} MiB",
        "kubectl get <31 kinds> -A + get secrets -A",
        b[0].requests,
        fmt(wb),
        rb as f64 / 1024.0
    );
    println!(
        "ratio (plugin / kubectl): time {:.2}, RSS {:.2}\n",
        wa.as_secs_f64() / wb.as_secs_f64(),
        ra as f64 / rb.max(1) as f64
    );
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
