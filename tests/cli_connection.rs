//! How the plugin reaches the API server, as kubectl does: a kubeconfig's `proxy-url`
//! (HTTP CONNECT and SOCKS5 proxies started here on loopback, which real kubectl uses too)
//! and the connection flags (`--server`, `--token`, `--certificate-authority`,
//! `--insecure-skip-tls-verify`) with no kubeconfig at all.

mod cli_support;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use cli_support::{Env, Out, BIN};

/// A proxy on loopback that records where each tunnel went.
struct Proxy {
    url: String,
    tunnels: Arc<Mutex<Vec<String>>>,
}

#[derive(Clone, Copy)]
enum Kind {
    /// HTTP `CONNECT`; with `Some(auth)`, a `Proxy-Authorization: Basic auth` is required.
    Connect(Option<&'static str>),
    Socks5,
}

impl Proxy {
    fn start(kind: Kind) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let tunnels = Arc::new(Mutex::new(Vec::new()));
        let seen = tunnels.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let seen = seen.clone();
                std::thread::spawn(move || {
                    let _ = serve(kind, conn, &seen);
                });
            }
        });
        let url = match kind {
            Kind::Connect(Some(_)) => format!("http://rotate:s%40cret@127.0.0.1:{port}"),
            Kind::Connect(None) => format!("http://127.0.0.1:{port}"),
            Kind::Socks5 => format!("socks5://127.0.0.1:{port}"),
        };
        Proxy { url, tunnels }
    }

    fn tunnels(&self) -> Vec<String> {
        self.tunnels.lock().unwrap().clone()
    }
}

fn serve(kind: Kind, mut conn: TcpStream, seen: &Mutex<Vec<String>>) -> std::io::Result<()> {
    let target = match kind {
        Kind::Connect(auth) => {
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                if conn.read(&mut byte)? == 0 {
                    return Ok(());
                }
                head.push(byte[0]);
            }
            let head = String::from_utf8_lossy(&head).into_owned();
            let target = head
                .strip_prefix("CONNECT ")
                .and_then(|r| r.split(' ').next())
                .unwrap_or("")
                .to_string();
            if let Some(want) = auth {
                let expected = format!(
                    "proxy-authorization: basic {}",
                    base64_encode(want.as_bytes())
                );
                if !head
                    .to_ascii_lowercase()
                    .contains(&expected.to_ascii_lowercase())
                {
                    conn.write_all(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n")?;
                    return Ok(());
                }
            }
            conn.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")?;
            target
        }
        Kind::Socks5 => {
            let mut greet = [0u8; 2];
            conn.read_exact(&mut greet)?;
            let mut methods = vec![0u8; greet[1] as usize];
            conn.read_exact(&mut methods)?;
            conn.write_all(&[5, 0])?;
            let mut req = [0u8; 4];
            conn.read_exact(&mut req)?;
            let host = match req[3] {
                1 => {
                    let mut ip = [0u8; 4];
                    conn.read_exact(&mut ip)?;
                    std::net::Ipv4Addr::from(ip).to_string()
                }
                3 => {
                    let mut len = [0u8; 1];
                    conn.read_exact(&mut len)?;
                    let mut name = vec![0u8; len[0] as usize];
                    conn.read_exact(&mut name)?;
                    String::from_utf8_lossy(&name).into_owned()
                }
                _ => return Ok(()),
            };
            let mut port = [0u8; 2];
            conn.read_exact(&mut port)?;
            conn.write_all(&[5, 0, 0, 1, 0, 0, 0, 0, 0, 0])?;
            format!("{host}:{}", u16::from_be_bytes(port))
        }
    };
    seen.lock().unwrap().push(target.clone());
    let upstream = TcpStream::connect(&target)?;
    let (mut a, mut b) = (conn.try_clone()?, upstream.try_clone()?);
    let up = std::thread::spawn(move || {
        let _ = std::io::copy(&mut a, &mut b);
        let _ = b.shutdown(Shutdown::Write);
    });
    let (mut c, mut d) = (upstream, conn);
    let _ = std::io::copy(&mut c, &mut d);
    let _ = d.shutdown(Shutdown::Write);
    let _ = up.join();
    Ok(())
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The sandbox's kubeconfig with `proxy-url` set on its cluster, written beside it.
fn kubeconfig_with_proxy(env: &Env, proxy: &str) -> PathBuf {
    let text = std::fs::read_to_string(env.kubeconfig()).unwrap();
    let mut doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    doc["clusters"][0]["cluster"]["proxy-url"] = proxy.into();
    let path = env.kubeconfig().with_file_name("proxied.kubeconfig");
    std::fs::write(&path, serde_yaml::to_string(&doc).unwrap()).unwrap();
    path
}

/// Runs the plugin with `args` only: no `--kubeconfig` added, `KUBECONFIG` as given.
fn rotate_bare(args: &[&str], kubeconfig_env: &Path, cache: &Path) -> Out {
    Out::from(
        Command::new(BIN)
            .args(args)
            .env("KUBECONFIG", kubeconfig_env)
            .env("KUBECACHEDIR", cache)
            .env_remove("HTTPS_PROXY")
            .env_remove("https_proxy")
            .stdin(Stdio::null())
            .output()
            .unwrap(),
    )
}

fn names(out: &Out) -> Vec<String> {
    out.stdout
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn a_kubeconfig_proxy_url_carries_every_request_through_http_connect_and_socks5() {
    let env = Env::demo();
    let sandbox = env.sb.addr().to_string();
    for kind in [
        Kind::Connect(None),
        Kind::Connect(Some("rotate:s@cret")),
        Kind::Socks5,
    ] {
        let proxy = Proxy::start(kind);
        let kubeconfig = kubeconfig_with_proxy(&env, &proxy.url);
        let k = kubeconfig.to_string_lossy().into_owned();
        let out = rotate_bare(
            &["list", "-n", "demo", "-o", "name"],
            &kubeconfig,
            &env.cache_dir(),
        );
        let out = out.expect(0);
        assert_eq!(names(out).len(), 5, "{}", out.stdout);
        let tunnels = proxy.tunnels();
        assert!(!tunnels.is_empty(), "{}: no tunnel opened", proxy.url);
        assert!(
            tunnels
                .iter()
                .all(|t| t.ends_with(&format!(":{}", env.sb.addr().port()))),
            "{tunnels:?} vs {sandbox}"
        );
        // Real kubectl goes through the same proxy with the same kubeconfig: the proxy
        // here is a proxy as kubectl knows one.
        let before = proxy.tunnels().len();
        let k = Command::new(cli_support::kubectl_path())
            .args(["--kubeconfig", &k, "get", "ns", "-o", "name"])
            .output()
            .unwrap();
        assert!(k.status.success(), "{}", String::from_utf8_lossy(&k.stderr));
        assert!(proxy.tunnels().len() > before);
    }
    // A proxy that is not there: the command fails, and says it was the proxy.
    let gone = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = gone.local_addr().unwrap().port();
    drop(gone);
    let kubeconfig = kubeconfig_with_proxy(&env, &format!("http://127.0.0.1:{port}"));
    let out = rotate_bare(&["list", "-n", "demo"], &kubeconfig, &env.cache_dir());
    out.expect(1);
    assert!(out.stderr.contains("proxy"), "{}", out.stderr);
    assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
}

#[test]
fn a_wrong_proxy_password_is_refused_and_not_printed() {
    let env = Env::demo();
    let proxy = Proxy::start(Kind::Connect(Some("rotate:s@cret")));
    let wrong = proxy.url.replace("s%40cret", "hunter2");
    let kubeconfig = kubeconfig_with_proxy(&env, &wrong);
    let out = rotate_bare(&["list", "-n", "demo"], &kubeconfig, &env.cache_dir());
    out.expect(1);
    assert!(!out.stderr.contains("hunter2"), "{}", out.stderr);
    assert!(out.stderr.contains("proxy"), "{}", out.stderr);
}

#[test]
fn server_token_and_ca_flags_need_no_kubeconfig() {
    let env = Env::demo();
    let dir = env.kubeconfig().parent().unwrap().to_path_buf();
    let doc: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(env.kubeconfig()).unwrap()).unwrap();
    let ca_b64 = doc["clusters"][0]["cluster"]["certificate-authority-data"]
        .as_str()
        .unwrap();
    use base64::Engine;
    let ca = base64::engine::general_purpose::STANDARD
        .decode(ca_b64)
        .unwrap();
    let ca_path = dir.join("ca.crt");
    std::fs::write(&ca_path, ca).unwrap();
    let ca_arg = ca_path.to_string_lossy().into_owned();
    let missing = dir.join("no-such-kubeconfig");
    let cache = env.cache_dir();
    let server = env.sb.url().to_string();
    let token = rotate_sandbox::ADMIN_TOKEN;

    let base = ["list", "-n", "demo", "-o", "name", "--server", &server];
    let with = |extra: &[&str]| -> Out {
        let argv: Vec<&str> = base.iter().chain(extra).copied().collect();
        rotate_bare(&argv, &missing, &cache)
    };
    let ok = with(&["--token", token, "--certificate-authority", &ca_arg]);
    assert_eq!(names(ok.expect(0)).len(), 5, "{}", ok.stdout);
    let ok = with(&["--token", token, "--insecure-skip-tls-verify"]);
    assert_eq!(names(ok.expect(0)).len(), 5, "{}", ok.stdout);

    // Without the CA the server's certificate is not trusted.
    let o = with(&["--token", token]);
    o.expect(1);
    assert!(
        o.stderr.to_lowercase().contains("certificate"),
        "{}",
        o.stderr
    );
    // A wrong token is the server's 401, and the token is not printed.
    let o = with(&["--token", "not-the-token", "--insecure-skip-tls-verify"]);
    o.expect(1);
    assert!(!o.stderr.contains("not-the-token"), "{}", o.stderr);
    // Flags that cannot go together are a usage error before any request.
    let before = env.sb.faults().total_requests();
    let o = with(&[
        "--token",
        token,
        "--insecure-skip-tls-verify",
        "--certificate-authority",
        &ca_arg,
    ]);
    o.expect(2);
    let o = with(&["--token", token, "--as-group", "g"]);
    o.expect(2);
    assert_eq!(env.sb.faults().total_requests(), before);
}

#[test]
fn an_exec_credential_plugin_supplies_the_token() {
    let env = Env::demo();
    let dir = env.kubeconfig().parent().unwrap().to_path_buf();
    let plugin = dir.join("get-token");
    let calls = dir.join("get-token.calls");
    std::fs::write(
        &plugin,
        format!(
            "#!/bin/sh\necho called >> '{}'\nprintf '%s' '{{\"apiVersion\":\"client.authentication.k8s.io/v1\",\
             \"kind\":\"ExecCredential\",\"status\":{{\"token\":\"{}\"}}}}'\n",
            calls.display(),
            rotate_sandbox::ADMIN_TOKEN
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&plugin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut doc: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(env.kubeconfig()).unwrap()).unwrap();
    doc["users"][0]["user"] = serde_yaml::from_str(&format!(
        "exec:\n  apiVersion: client.authentication.k8s.io/v1\n  command: {}\n  interactiveMode: Never\n",
        plugin.display()
    ))
    .unwrap();
    let kubeconfig = dir.join("exec.kubeconfig");
    std::fs::write(&kubeconfig, serde_yaml::to_string(&doc).unwrap()).unwrap();
    let out = rotate_bare(
        &["list", "-n", "demo", "-o", "name"],
        &kubeconfig,
        &env.cache_dir(),
    );
    assert_eq!(names(out.expect(0)).len(), 5, "{}", out.stdout);
    assert!(std::fs::read_to_string(&calls).unwrap().contains("called"));
    // A plugin that fails: exit 1, said in one line.
    std::fs::write(&plugin, "#!/bin/sh\necho 'no session' >&2\nexit 1\n").unwrap();
    let out = rotate_bare(&["list", "-n", "demo"], &kubeconfig, &env.cache_dir());
    out.expect(1);
    assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
}
