//! Shared fixtures for the CLI tests: a sandbox API server, the built plugin, real kubectl,
//! and a check that no password ever shows up in anything the plugin printed.
#![allow(dead_code)] // each test binary uses a different part of this module

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use clap::Parser as _;
use rotate_sandbox::{Options, SandboxHandle};
use serde_json::Value;

/// The plugin binary cargo built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_kubectl-rotate");

/// What a process printed and how it ended.
#[derive(Debug, Clone)]
pub struct Out {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// stdout.
    pub stdout: String,
    /// stderr.
    pub stderr: String,
}

impl Out {
    /// Captures a finished process.
    pub fn from(o: Output) -> Out {
        Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// Panics with both streams unless the exit code is `code`.
    #[track_caller]
    pub fn expect(&self, code: i32) -> &Out {
        assert_eq!(
            self.code, code,
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// stdout parsed as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

/// The kubectl to use: `$KUBECTL`, else `kubectl` on PATH (scripts/ensure-kubectl.sh), else /usr/bin/kubectl.
pub fn kubectl_path() -> PathBuf {
    if let Some(k) = std::env::var_os("KUBECTL") {
        return PathBuf::from(k);
    }
    for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
        let p = dir.join("kubectl");
        if p.is_file() {
            return p;
        }
    }
    PathBuf::from("/usr/bin/kubectl")
}

/// A sandbox with the demo fixtures, and everything the plugin printed while it ran.
pub struct Env {
    /// The running sandbox.
    pub sb: SandboxHandle,
    printed: RefCell<Vec<String>>,
    seen_passwords: RefCell<Vec<String>>,
}

impl Env {
    /// Demo fixtures, fast operators.
    pub fn demo() -> Env {
        Env::with(Options::demo())
    }

    /// Demo fixtures with slow operators (each step takes `step`).
    pub fn slow(step: Duration) -> Env {
        Env::with(Options {
            operator_delay: step,
            ..Options::demo()
        })
    }

    /// Any options.
    pub fn with(opts: Options) -> Env {
        let sb = SandboxHandle::start(opts).expect("sandbox starts");
        let env = Env {
            sb,
            printed: RefCell::new(Vec::new()),
            seen_passwords: RefCell::new(Vec::new()),
        };
        env.remember_passwords();
        env
    }

    /// The sandbox's kubeconfig.
    pub fn kubeconfig(&self) -> &Path {
        self.sb.kubeconfig_path()
    }

    /// Runs `kubectl-rotate ARGS --kubeconfig K` and records its output.
    pub fn rotate(&self, args: &[&str]) -> Out {
        let out = Out::from(
            self.rotate_command(args)
                .output()
                .expect("run kubectl-rotate"),
        );
        self.record(&out);
        out
    }

    /// Runs the plugin in this process (`kubectl_rotate::run_to_exit_code`) with in-memory
    /// streams: `stdin` is what it reads, `terminal` whether stdin counts as a terminal (then
    /// it may be asked a question). No process, no kubectl: for tests of the plugin's own
    /// behaviour, and faster than spawning it.
    pub fn run(&self, args: &[&str], stdin: &str, terminal: bool) -> Out {
        let kubeconfig = self.kubeconfig().to_string_lossy().into_owned();
        let cache = self.cache_dir().to_string_lossy().into_owned();
        let argv = args
            .iter()
            .copied()
            .chain(["--kubeconfig", kubeconfig.as_str()])
            .chain(["--cache-dir", cache.as_str()]);
        let out = in_process(argv, stdin, terminal);
        self.record(&out);
        out
    }

    /// Where the plugin keeps its discovery cache in this test: beside the sandbox's
    /// kubeconfig, gone with it (never the user's ~/.kube/cache).
    pub fn cache_dir(&self) -> PathBuf {
        self.kubeconfig()
            .parent()
            .unwrap_or(Path::new("."))
            .join("cache")
    }

    /// The command `rotate` runs, for tests that need to drive the process themselves.
    pub fn rotate_command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args)
            .arg("--kubeconfig")
            .arg(self.kubeconfig())
            .env_remove("KUBECONFIG")
            .env("KUBECACHEDIR", self.cache_dir())
            .stdin(Stdio::null());
        c
    }

    /// What CronJob `name` in `demo` runs: its container's args.
    pub fn cron_job_args(&self, name: &str) -> Vec<String> {
        let cron = self.get("cronjob", name);
        cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"]
            .as_array()
            .expect("args")
            .iter()
            .map(|a| a.as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// Runs `program ARGS` as a pod of service account `namespace/name` would: in a mount
    /// namespace of its own (`unshare -m`, as root) where the account's token, the CA and
    /// the namespace are bind-mounted at /var/run/secrets/kubernetes.io/serviceaccount, with
    /// `KUBERNETES_SERVICE_HOST`/`_PORT` pointing at the sandbox, and no kubeconfig (`HOME`
    /// empty, `KUBECONFIG` unset). The ServiceAccount is created when missing.
    pub fn in_cluster(&self, namespace: &str, name: &str, program: &str, args: &[&str]) -> Out {
        let root = self
            .kubeconfig()
            .parent()
            .unwrap()
            .join(format!("pod-{namespace}-{name}"));
        let (mount, home) = (root.join("serviceaccount"), root.join("home"));
        std::fs::create_dir_all(&home).unwrap();
        self.sb
            .service_account_mount(namespace, name, &mount)
            .expect("the service account's mount");
        const SCRIPT: &str = "set -e; sa=/var/run/secrets/kubernetes.io/serviceaccount; \
            mkdir -p /var/run/secrets; mount -t tmpfs pod-secrets /var/run/secrets; \
            mkdir -p $sa; mount --bind \"$0\" $sa; exec \"$@\"";
        let mut c = Command::new("unshare");
        c.args(["-m", "sh", "-c", SCRIPT])
            .arg(&mount)
            .arg(program)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &home)
            .envs(self.sb.in_cluster_env())
            .stdin(Stdio::null());
        let out = Out::from(c.output().expect("run unshare (as root)"));
        self.record(&out);
        out
    }

    /// Starts `kubectl-rotate ARGS` with stdout and stderr piped, for tests that act on
    /// the cluster while it runs; [`Env::finish`] waits for it.
    pub fn spawn(&self, args: &[&str]) -> std::process::Child {
        self.rotate_command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn kubectl-rotate")
    }

    /// Waits for a command [`Env::spawn`] started and records its output.
    pub fn finish(&self, child: std::process::Child) -> Out {
        let out = Out::from(child.wait_with_output().expect("wait for kubectl-rotate"));
        self.record(&out);
        out
    }

    /// Runs `n` copies of `kubectl-rotate ARGS` at once, each reading `stdin` (when given)
    /// from a pipe, and returns how each ended.
    pub fn concurrently(&self, n: usize, args: &[&str], stdin: Option<&str>) -> Vec<Out> {
        use std::io::Write as _;
        let children: Vec<_> = (0..n)
            .map(|i| {
                let mut c = self.rotate_command(args);
                c.stdout(Stdio::piped()).stderr(Stdio::piped());
                if stdin.is_some() {
                    c.stdin(Stdio::piped());
                }
                let mut child = c.spawn().expect("spawn kubectl-rotate");
                if let Some(text) = stdin {
                    let text = text.replace("{i}", &i.to_string());
                    let mut pipe = child.stdin.take().expect("stdin");
                    pipe.write_all(text.as_bytes()).expect("write stdin");
                }
                child
            })
            .collect();
        children.into_iter().map(|c| self.finish(c)).collect()
    }

    /// The requests so far that change something (the self reviews aside, which write
    /// nothing), as `METHOD path`.
    pub fn writes(&self) -> Vec<String> {
        self.sb
            .faults()
            .requests()
            .into_iter()
            .filter(|r| matches!(r.method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE"))
            .filter(|r| !r.path.contains("selfsubject"))
            .map(|r| format!("{} {}", r.method, r.path))
            .collect()
    }

    /// Records output of a plugin run for the password check.
    pub fn record(&self, out: &Out) {
        self.printed.borrow_mut().push(out.stdout.clone());
        self.printed.borrow_mut().push(out.stderr.clone());
    }

    /// Runs real kubectl against the sandbox (namespace demo by default, from the kubeconfig).
    pub fn kubectl(&self, args: &[&str]) -> Out {
        let out = Command::new(kubectl_path())
            .args(args)
            .arg("--kubeconfig")
            .arg(self.kubeconfig())
            .env("KUBECACHEDIR", self.cache_dir())
            .stdin(Stdio::null())
            .output()
            .expect("run kubectl");
        Out::from(out)
    }

    /// Makes the next KubeDB rotation of `target` (`TYPE/NAME` in `demo`) fail with
    /// `message`: the fault names the ops request, whose name a client dry run tells in
    /// advance. Returns that name.
    pub fn fail_next_rotation(&self, target: &str, message: &str) -> String {
        let dry = self.rotate(&["auth", target, "--dry-run=client", "-o", "name"]);
        let name = name_of(&dry.expect(0).stdout);
        self.sb.faults().fail_ops_request("demo", &name, message);
        name
    }

    /// `kubectl get TYPE NAME -o json`.
    pub fn get(&self, typ: &str, name: &str) -> Value {
        self.kubectl(&["get", typ, name, "-o", "json"])
            .expect(0)
            .json()
    }

    /// The Arc instance's managedCredentialsGeneration (missing = 0).
    pub fn sqlmi_generation(&self) -> i64 {
        self.get("sqlmi", "sqlmi-demo")["spec"]["update"]["managedCredentialsGeneration"]
            .as_i64()
            .unwrap_or(0)
    }

    /// A key of a Secret, decoded.
    pub fn secret_value(&self, secret: &str, key: &str) -> Option<String> {
        let s = self.get("secret", secret);
        let b64 = s["data"][key].as_str()?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .expect("base64");
        let v = String::from_utf8(bytes).expect("utf8");
        self.seen_passwords.borrow_mut().push(v.clone());
        Some(v)
    }

    /// The password a database uses now (following `spec.authSecret.name`).
    pub fn db_password(&self, typ: &str, db: &str) -> String {
        let secret = self.get(typ, db)["spec"]["authSecret"]["name"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| format!("{db}-auth"));
        self.secret_value(&secret, "password")
            .expect("password key")
    }

    /// How many KubeDB ops requests of any kind the sandbox holds.
    pub fn ops_request_count(&self) -> usize {
        let reg = &self.sb.shared().registry;
        reg.defs
            .iter()
            .filter(|d| d.group == "ops.kubedb.com")
            .map(|d| self.sb.store().count(d))
            .sum()
    }

    /// Every ops request of a kind in demo.
    pub fn ops_requests(&self, plural: &str) -> Vec<Value> {
        self.kubectl(&["get", plural, "-o", "json"])
            .expect(0)
            .json()["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Collects every password-like value in the demo namespace's Secrets now.
    pub fn remember_passwords(&self) {
        let list = self
            .kubectl(&["get", "secrets", "-o", "json"])
            .expect(0)
            .json();
        for item in list["items"].as_array().into_iter().flatten() {
            for (k, v) in item["data"].as_object().into_iter().flatten() {
                if k.contains("password") || k.contains("authData") || k.contains("key") {
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(v.as_str().unwrap_or_default())
                        .unwrap();
                    if let Ok(s) = String::from_utf8(bytes) {
                        self.seen_passwords.borrow_mut().push(s);
                    }
                }
            }
        }
    }

    /// Asserts that no password (old or new, as held in Secrets) appears in anything the
    /// plugin printed, in clear or in base64.
    #[track_caller]
    pub fn assert_no_password_printed(&self) {
        self.remember_passwords();
        let printed = self.printed.borrow().join("\n");
        for p in self.seen_passwords.borrow().iter().filter(|p| p.len() >= 4) {
            let b64 = base64::engine::general_purpose::STANDARD.encode(p.as_bytes());
            assert!(
                !printed.contains(p.as_str()),
                "a password appeared in the plugin's output:\n{printed}"
            );
            assert!(
                !printed.contains(&b64),
                "a base64 password appeared in the plugin's output:\n{printed}"
            );
        }
    }
}

/// Runs `kubectl-rotate ARGV` in this process (`kubectl_rotate::run_to_exit_code`) with
/// in-memory streams: `stdin` is what it reads, `terminal` whether stdin counts as a
/// terminal (then it may be asked a question). The arguments are taken as they are (no
/// kubeconfig is added): [`Env::run`] adds its sandbox's.
pub fn in_process<'a>(argv: impl IntoIterator<Item = &'a str>, stdin: &str, terminal: bool) -> Out {
    let argv = std::iter::once("kubectl-rotate").chain(argv);
    // NB: stderr and the `-v` log are one buffer, as they are one stream in a process.
    let (mut out, err) = (Vec::new(), Shared::default());
    let code = match kubectl_rotate::cli::Cli::try_parse_from(argv) {
        Err(e) => {
            let text = e.render().to_string();
            if e.use_stderr() {
                err.0.lock().unwrap().extend(text.bytes());
            } else {
                out.extend(text.bytes());
            }
            e.exit_code()
        }
        Ok(cli) => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a runtime");
            let mut input = stdin.as_bytes();
            let mut err_writer = err.clone();
            let mut io = kubectl_rotate::Io {
                out: &mut out,
                err: &mut err_writer,
                stdin: &mut input,
                stdin_is_terminal: terminal,
                log: Arc::new(Mutex::new(err.clone())),
            };
            i32::from(runtime.block_on(kubectl_rotate::run_to_exit_code(cli, &mut io)))
        }
    };
    let err = err.0.lock().unwrap().clone();
    Out {
        code,
        stdout: String::from_utf8_lossy(&out).into_owned(),
        stderr: String::from_utf8_lossy(&err).into_owned(),
    }
}

/// A buffer several writers share (stderr and the `-v` log of an in-process run).
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `auth` of pg-demo with a password piped in, followed to the end.
pub const AUTH_PG_STDIN: &[&str] = &[
    "auth",
    "pg/pg-demo",
    "-n",
    "demo",
    "--password-stdin",
    "--wait",
];

/// The name part of `kind.group/name`.
pub fn name_of(object_name: &str) -> String {
    object_name
        .trim()
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string()
}

/// A Deployment `name` in `demo` whose container reads each (VAR, Secret) pair's
/// `password` key through env: a consumer of those Secrets to restart.
pub fn deployment_reading(name: &str, env: &[(&str, &str)]) -> String {
    let vars: String = env
        .iter()
        .map(|(var, secret)| {
            format!(
                "        - name: {var}\n          valueFrom: {{secretKeyRef: {{name: {secret}, key: password}}}}\n"
            )
        })
        .collect();
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}, namespace: demo}}\nspec:\n  \
         selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n    \
         spec:\n      containers:\n      - name: app\n        image: app\n        env:\n{vars}"
    )
}

/// The item of list document `list` (`-o json`) whose metadata.name is `name`.
pub fn item_named<'a>(list: &'a Value, name: &str) -> &'a Value {
    list["items"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["metadata"]["name"] == name))
        .unwrap_or_else(|| panic!("no item {name} in {list}"))
}
