//! Benchmark: `kubectl rotate auth --all -A --yes --wait` over many sandbox databases,
//! with `--parallel 16` and serially (`--parallel 1`), printing wall times, their ratio,
//! API requests per database outside watches, and the plugin's peak RSS.
//!
//! ```sh
//! cargo build --release --bin kubectl-rotate
//! cargo run --release --example bench_bulk -- --serial-sample 20
//! ```
//!
//! Options (defaults in brackets): `--databases N` [200], `--namespaces N` [8],
//! `--delay-ms N` operator step delay [1000], `--parallel N` [16], `--serial-sample N`
//! time the serial run on N databases and extrapolate linearly [0 = all of them; a full
//! serial run over 200 databases with 1 s steps takes about half an hour].
//!
//! Not part of `cargo test`: it runs for minutes and wants more than CI's two cores.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kubectl_rotate::engines::ENGINES;
use rotate_sandbox::fixtures::Db;
use rotate_sandbox::{Options, SandboxHandle};

struct Args {
    databases: usize,
    namespaces: usize,
    delay: Duration,
    parallel: usize,
    serial_sample: usize,
}

fn args() -> Args {
    let mut a = Args {
        databases: 200,
        namespaces: 8,
        delay: Duration::from_millis(1000),
        parallel: 16,
        serial_sample: 0,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    for pair in argv.chunks(2) {
        let value = || -> usize {
            pair.get(1)
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{} needs a number", pair[0]))
        };
        match pair[0].as_str() {
            "--databases" => a.databases = value(),
            "--namespaces" => a.namespaces = value().max(1),
            "--delay-ms" => a.delay = Duration::from_millis(value() as u64),
            "--parallel" => a.parallel = value().max(1),
            "--serial-sample" => a.serial_sample = value(),
            other => panic!("unknown option {other}"),
        }
    }
    a
}

/// The release plugin binary next to this example (target/release/examples/..).
fn plugin() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let bin = exe
        .parent()
        .and_then(|examples| examples.parent())
        .map(|dir| dir.join("kubectl-rotate"))
        .expect("target dir");
    assert!(
        bin.is_file(),
        "{} is missing: run `cargo build --release --bin kubectl-rotate` first",
        bin.display()
    );
    bin
}

/// What one run of the plugin took.
struct Run {
    wall: Duration,
    peak_rss_kib: u64,
    requests_outside_watches: u64,
    watches: u64,
}

fn run(sb: &SandboxHandle, extra: &[&str], parallel: usize) -> Run {
    sb.faults().reset_counts();
    let parallel = parallel.to_string();
    let started = Instant::now();
    let mut child = Command::new(plugin())
        .args([
            "auth",
            "-A",
            "--yes",
            "--wait",
            "--timeout",
            "30m",
            "--parallel",
        ])
        .arg(&parallel)
        .args(extra)
        .arg("--kubeconfig")
        .arg(sb.kubeconfig_path())
        .env_remove("KUBECONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the plugin");
    // Peak RSS from /proc (VmHWM is the high-water mark), polled until the plugin exits.
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak = 0u64;
    let stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap_or_default());
    loop {
        if let Ok(s) = std::fs::read_to_string(&status_path) {
            if let Some(kib) = s
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
            {
                peak = peak.max(kib);
            }
        }
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let wall = started.elapsed();
    let status = child.wait().expect("wait");
    let table = reader.join().unwrap_or_default();
    assert!(status.success(), "the plugin failed:\n{table}");
    let ok = table
        .lines()
        .filter(|l| l.split_whitespace().nth(4) == Some("Successful"))
        .count();
    assert_eq!(
        ok + 1,
        table.lines().count(),
        "every row Successful:\n{table}"
    );
    let counts = sb.faults().request_counts();
    let sum = |watch: bool| -> u64 {
        counts
            .iter()
            .filter(|(m, _, _)| (m == "WATCH") == watch)
            .map(|(_, _, n)| n)
            .sum()
    };
    Run {
        wall,
        peak_rss_kib: peak,
        requests_outside_watches: sum(false),
        watches: sum(true),
    }
}

fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 120.0 {
        format!("{}m{:02}s", (s / 60.0) as u64, (s % 60.0) as u64)
    } else {
        format!("{s:.1}s")
    }
}

fn main() {
    let a = args();
    let sb = SandboxHandle::start(Options {
        operator_delay: a.delay,
        ..Options::empty()
    })
    .expect("sandbox starts");
    let kinds: Vec<_> = ENGINES.iter().filter(|e| e.ops().is_some()).collect();
    let sample = if a.serial_sample == 0 {
        a.databases
    } else {
        a.serial_sample.min(a.databases)
    };
    for i in 0..a.databases {
        let e = kinds[i % kinds.len()];
        let mut db = Db::new(
            e.kind,
            &format!("bench-{}", i % a.namespaces),
            &format!("{}-{i}", e.short()),
        );
        if i < sample {
            db = db.label("bench-serial-sample", "yes");
        }
        db.insert(sb.shared()).expect("fixture");
    }
    eprintln!(
        "{} databases ({} kinds, {} namespaces), operator step delay {:?}",
        a.databases,
        kinds.len(),
        a.namespaces,
        a.delay
    );

    eprintln!("parallel run (--parallel {}) ...", a.parallel);
    let par = run(&sb, &["--all"], a.parallel);
    eprintln!("serial run (--parallel 1) over {sample} databases ...");
    let ser = run(&sb, &["-l", "bench-serial-sample=yes"], 1);
    let serial_total = ser.wall.mul_f64(a.databases as f64 / sample as f64);
    let extrapolated = sample < a.databases;

    let per_db = par.requests_outside_watches as f64 / a.databases as f64;
    let ratio = serial_total.as_secs_f64() / par.wall.as_secs_f64();
    println!(
        "DATABASES   PARALLEL({})   SERIAL(1)   RATIO   REQUESTS/DB (OUTSIDE WATCHES)   WATCHES   PEAK RSS",
        a.parallel
    );
    println!(
        "{:<11} {:<13} {:<11} {:<7} {:<31} {:<9} {:.1} MiB",
        a.databases,
        secs(par.wall),
        if extrapolated {
            format!("{}*", secs(serial_total))
        } else {
            secs(serial_total)
        },
        format!("{ratio:.1}x"),
        format!("{per_db:.2}"),
        par.watches,
        par.peak_rss_kib as f64 / 1024.0
    );
    if extrapolated {
        println!(
            "* extrapolated linearly from a serial run over {sample} databases ({}; {} requests \
             outside watches, {:.2} per database)",
            secs(ser.wall),
            ser.requests_outside_watches,
            ser.requests_outside_watches as f64 / sample as f64
        );
    }
}
