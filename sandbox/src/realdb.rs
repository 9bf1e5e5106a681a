//! Real database servers behind sandbox databases, so login verification is genuine.
//!
//! A KubeDB database bound to a real server (`serve --real-db NAME=URL`, or [`bind`]) carries
//! the annotation `sandbox.kubectl-rotate.dev/real-db: <scheme>://<host>:<port>` (never a
//! password); its auth Secret holds the server's credentials and its pods forward the
//! engine's port to the server. When the simulated operator rotates such a database, it
//! really changes the password on the server (ALTER ROLE / ALTER USER / ACL SETUSER) with
//! the server's own client (psql, mariadb, redis-cli), before it updates the Secret.
//!
//! [`Server`] starts throwaway PostgreSQL, MariaDB and Redis servers on loopback in temp
//! dirs for tests (from Debian's packages; no system service needed).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::store::Part;
use crate::tls::Issued;
use crate::{ApiError, Shared};

/// Annotation on a database naming the real server behind it.
pub const REAL_DB_ANNOTATION: &str = "sandbox.kubectl-rotate.dev/real-db";

/// Which wire protocol a server speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// `postgresql://`
    Postgres,
    /// `mysql://` (MariaDB)
    Mysql,
    /// `redis://`
    Redis,
}

impl Engine {
    fn scheme(self) -> &'static str {
        match self {
            Engine::Postgres => "postgresql",
            Engine::Mysql => "mysql",
            Engine::Redis => "redis",
        }
    }
    /// The port KubeDB's pods listen on for this engine.
    pub fn pod_port(self) -> u16 {
        match self {
            Engine::Postgres => 5432,
            Engine::Mysql => 3306,
            Engine::Redis => 6379,
        }
    }
}

/// A parsed `scheme://user:password@host:port` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    /// Protocol.
    pub engine: Engine,
    /// User name ("" for Redis' default user).
    pub username: String,
    /// Password.
    pub password: String,
    /// Host.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Whether the server speaks TLS there (`rediss://`, `?sslmode=require`, `?ssl=true`):
    /// the simulated operator's own client then logs in over TLS too.
    pub tls: bool,
}

fn percent_decode(s: &str) -> String {
    form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

impl Url {
    /// Parse `postgresql://postgres:PW@127.0.0.1:5432` (also `postgres://`, `mysql://`,
    /// `mariadb://`, `redis://:PW@host:port`); TLS as `rediss://`, `?sslmode=require`
    /// (PostgreSQL) or `?ssl=true` (MariaDB).
    pub fn parse(s: &str) -> Result<Url, String> {
        let (scheme, rest) = s
            .split_once("://")
            .ok_or_else(|| format!("not a URL: {s:?}"))?;
        let (engine, mut tls) = match scheme {
            "postgresql" | "postgres" => (Engine::Postgres, false),
            "mysql" | "mariadb" => (Engine::Mysql, false),
            "redis" => (Engine::Redis, false),
            "rediss" => (Engine::Redis, true),
            other => {
                return Err(format!(
                    "unsupported scheme {other:?}: use postgresql, mysql, redis or rediss"
                ))
            }
        };
        if let Some((_, query)) = rest.split_once('?') {
            tls |= query
                .split('&')
                .any(|kv| matches!(kv, "sslmode=require" | "ssl=true"));
        }
        let rest = rest.split(['/', '?']).next().unwrap_or("");
        let (auth, hostport) = rest.rsplit_once('@').unwrap_or(("", rest));
        let (user, pw) = auth.split_once(':').unwrap_or((auth, ""));
        let (host, port) = hostport
            .rsplit_once(':')
            .ok_or_else(|| "the URL needs a port".to_string())?;
        Ok(Url {
            engine,
            username: percent_decode(user),
            password: percent_decode(pw),
            host: host.to_string(),
            port: port.parse().map_err(|_| format!("invalid port {port:?}"))?,
            tls,
        })
    }
    /// `scheme://host:port`, without credentials (with its TLS marker).
    pub fn address(&self) -> String {
        self.with_credentials("")
    }
    /// The URL with `credentials` (`user:password@`, or "") before the host.
    fn with_credentials(&self, credentials: &str) -> String {
        let (scheme, query) = match (self.engine, self.tls) {
            (e, false) => (e.scheme(), ""),
            (Engine::Redis, true) => ("rediss", ""),
            (Engine::Postgres, true) => ("postgresql", "?sslmode=require"),
            (Engine::Mysql, true) => ("mysql", "?ssl=true"),
        };
        format!("{scheme}://{credentials}{}:{}{query}", self.host, self.port)
    }
}

/// Bind the database `ns/name` (of any KubeDB kind) to a real server: annotate it, put the
/// server's credentials into its auth Secret, and make its pods forward to the server.
pub fn bind(shared: &Shared, ns: &str, name: &str, url: &Url) -> Result<(), ApiError> {
    let reg = &shared.registry;
    let db_def = reg
        .defs
        .iter()
        .find(|d| d.group == "kubedb.com" && shared.store.get(d, ns, name).is_ok())
        .ok_or_else(|| ApiError::new(404, "NotFound", format!("no KubeDB database {ns}/{name}")))?
        .clone();
    let db = shared
        .store
        .modify(&db_def, ns, name, Part::Main, false, |cur| {
            let mut n = cur.clone();
            n["metadata"]["annotations"][REAL_DB_ANNOTATION] = json!(url.address());
            Ok(n)
        })?;
    let secret_name = db["spec"]["authSecret"]["name"]
        .as_str()
        .map(str::to_string)
        .unwrap_or(format!("{name}-auth"));
    let secrets = reg
        .find("", "v1", "secrets")
        .expect("secrets served")
        .clone();
    use base64::Engine as _;
    let b64 = |s: &str| json!(base64::engine::general_purpose::STANDARD.encode(s));
    shared
        .store
        .modify(&secrets, ns, &secret_name, Part::Main, false, |cur| {
            let mut n = cur.clone();
            if !url.username.is_empty() {
                n["data"]["username"] = b64(&url.username);
            }
            n["data"]["password"] = b64(&url.password);
            Ok(n)
        })?;
    let pods = reg.find("", "v1", "pods").expect("pods served").clone();
    let forward = format!("{}={}:{}", url.engine.pod_port(), url.host, url.port);
    let (items, _) = shared.store.list(&pods, Some(ns), None);
    for p in items {
        let labels = &p["metadata"]["labels"];
        if labels["app.kubernetes.io/instance"] == json!(name) {
            let pod_name = p["metadata"]["name"].as_str().unwrap_or("").to_string();
            shared
                .store
                .modify(&pods, ns, &pod_name, Part::Main, false, |cur| {
                    let mut n = cur.clone();
                    n["metadata"]["annotations"][crate::portforward::FORWARD_ANNOTATION] =
                        json!(forward);
                    Ok(n)
                })?;
        }
    }
    Ok(())
}

/// The real server a database is bound to, if any (from its annotation; no credentials).
pub fn binding(db: &Value) -> Option<Url> {
    let addr = db["metadata"]["annotations"][REAL_DB_ANNOTATION].as_str()?;
    Url::parse(addr).ok()
}

fn run_client(mut cmd: Command, stdin: &str) -> Result<(), String> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {:?}: {e}", cmd.get_program()))?;
    if let Some(mut i) = child.stdin.take() {
        let _ = i.write_all(stdin.as_bytes());
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    // NB: redis-cli exits 0 even when a command fails; its errors start with "ERR"/"WRONGPASS".
    if !out.status.success()
        || stdout.contains("ERR")
        || stdout.contains("WRONGPASS")
        || stdout.contains("NOAUTH")
    {
        return Err(format!("{} {}", stdout.trim(), stderr.trim())
            .trim()
            .to_string());
    }
    Ok(())
}

fn sql_quote(s: &str) -> String {
    s.replace('\'', "''")
}

/// SQL that sets the password of `user` at every host it exists for.
// NB: the same user name may exist for several hosts (127.0.0.1, ::1, %): MariaDB picks the
// most specific match at login, so changing only one would leave the old password working.
fn alter_all_hosts(user: &str, password: &str) -> String {
    format!(
        "SET @pw = '{}';\n\
         SELECT CONCAT('ALTER USER ', GROUP_CONCAT(CONCAT(QUOTE(User), '@', QUOTE(Host), ' IDENTIFIED BY ', QUOTE(@pw)) SEPARATOR ', ')) INTO @s FROM mysql.user WHERE User = '{}';\n\
         PREPARE st FROM @s; EXECUTE st; DEALLOCATE PREPARE st;\n",
        sql_quote(password),
        sql_quote(user)
    )
}

/// Change the password of `user` on the real server at `server` (its address; over TLS
/// when it has it, trusting any certificate: this is the operator's side, not what is
/// tested), logging in with the old one. Passwords travel on stdin and in environment
/// variables, never in argv.
pub fn change_password(server: &Url, user: &str, old: &str, new: &str) -> Result<(), String> {
    let (host, port) = (server.host.as_str(), server.port);
    match server.engine {
        Engine::Postgres => {
            let mut c = Command::new("psql");
            c.args([
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                host,
                "-p",
                &port.to_string(),
                "-U",
                user,
                "-d",
                "postgres",
            ])
            .env("PGPASSWORD", old)
            .env("PGCONNECT_TIMEOUT", "5")
            .env("PGSSLMODE", if server.tls { "require" } else { "prefer" });
            let ident = user.replace('"', "\"\"");
            run_client(
                c,
                &format!(
                    "ALTER ROLE \"{ident}\" WITH PASSWORD '{}';\n",
                    sql_quote(new)
                ),
            )
        }
        Engine::Mysql => {
            let mut c = Command::new("mariadb");
            c.args([
                "--protocol=TCP",
                "-h",
                host,
                "-P",
                &port.to_string(),
                "-u",
                user,
                "--connect-timeout=5",
            ])
            .env("MYSQL_PWD", old);
            if server.tls {
                c.arg("--ssl");
            }
            run_client(c, &alter_all_hosts(user, new))
        }
        Engine::Redis => {
            let mut c = Command::new("redis-cli");
            c.args(["-h", host, "-p", &port.to_string(), "--no-auth-warning"]);
            if server.tls {
                c.args(["--tls", "--insecure"]);
            }
            if !user.is_empty() && user != "default" {
                c.args(["--user", user]);
            }
            c.env("REDISCLI_AUTH", old);
            let u = if user.is_empty() { "default" } else { user };
            run_client(c, &format!("ACL SETUSER {u} on resetpass >{new}\n"))
        }
    }
}

/// A throwaway database server on 127.0.0.1 in a temp dir; stopped and removed on drop.
pub struct Server {
    /// `scheme://user:password@127.0.0.1:port`, parsed.
    pub url: Url,
    dir: PathBuf,
    child: Option<Child>,
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn temp_dir(tag: &str) -> std::io::Result<PathBuf> {
    let d = std::env::temp_dir().join(format!("rotate-{tag}-{:016x}", rand::random::<u64>()));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}

fn io_err(msg: impl Into<String>) -> std::io::Error {
    std::io::Error::other(msg.into())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0"))
        .unwrap_or(false)
}

/// Run `cmd` as `user` when we are root (PostgreSQL refuses to run as root).
fn as_user(user: &str, program: &str) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", user, "--", program]);
        c
    } else {
        Command::new(program)
    }
}

fn chown(dir: &Path, user: &str) -> std::io::Result<()> {
    if is_root() {
        let st = Command::new("chown").args(["-R", user]).arg(dir).status()?;
        if !st.success() {
            return Err(io_err(format!("chown {user} {} failed", dir.display())));
        }
    }
    Ok(())
}

fn pg_bin(name: &str) -> std::io::Result<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|_| io_err("PostgreSQL is not installed (apt-get install postgresql)"))?
        .filter_map(Result::ok)
        .map(|e| e.path().join("bin"))
        .collect();
    dirs.sort();
    dirs.into_iter()
        .rev()
        .map(|d| d.join(name))
        .find(|p| p.exists())
        .ok_or_else(|| io_err(format!("{name} not found")))
}

fn wait_until(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) -> std::io::Result<()> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(io_err(format!("{what} did not start within {timeout:?}")))
}

/// Write a server's certificate and key into `dir` (`server.crt`, `server.key`, and the CA
/// as `ca.crt`), readable by its owner only, as PostgreSQL demands of the key.
fn write_certificates(dir: &Path, tls: &Issued) -> std::io::Result<(PathBuf, PathBuf, PathBuf)> {
    use std::os::unix::fs::PermissionsExt;
    let paths = (
        dir.join("server.crt"),
        dir.join("server.key"),
        dir.join("ca.crt"),
    );
    for (path, pem) in [
        (&paths.0, &tls.cert_pem),
        (&paths.1, &tls.key_pem),
        (&paths.2, &tls.ca_pem),
    ] {
        std::fs::write(path, pem)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(paths)
}

fn path_str(p: &Path) -> String {
    p.display().to_string()
}

impl Server {
    /// A PostgreSQL server with superuser `postgres` / `password`.
    pub fn postgres(password: &str) -> std::io::Result<Server> {
        Server::postgres_with(password, None)
    }

    /// A PostgreSQL server with `ssl=on` and `tls`'s certificate, which takes logins over
    /// TLS only (`hostssl` lines in pg_hba.conf; a plain login is refused, SQLSTATE 28000).
    pub fn postgres_tls(password: &str, tls: &Issued) -> std::io::Result<Server> {
        Server::postgres_with(password, Some(tls))
    }

    fn postgres_with(password: &str, tls: Option<&Issued>) -> std::io::Result<Server> {
        let dir = temp_dir("pg")?;
        let data = dir.join("data");
        std::fs::write(dir.join("pw"), password)?;
        let certs = tls.map(|t| write_certificates(&dir, t)).transpose()?;
        chown(&dir, "postgres")?;
        let st = as_user("postgres", pg_bin("initdb")?.to_str().unwrap_or("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth=scram-sha-256", "--pwfile"])
            .arg(dir.join("pw"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        std::fs::remove_file(dir.join("pw")).ok();
        if !st.success() {
            return Err(io_err("initdb failed"));
        }
        let mut tls_args = vec![];
        if let Some((cert, key, _)) = &certs {
            // NB: initdb wrote pg_hba.conf as the postgres user; it keeps its owner.
            std::fs::write(
                data.join("pg_hba.conf"),
                "local all all scram-sha-256\n\
                 hostssl all all 127.0.0.1/32 scram-sha-256\n\
                 hostssl all all ::1/128 scram-sha-256\n",
            )?;
            tls_args = vec![
                "-c".to_string(),
                "ssl=on".into(),
                "-c".into(),
                format!("ssl_cert_file={}", path_str(cert)),
                "-c".into(),
                format!("ssl_key_file={}", path_str(key)),
            ];
        }
        let port = free_port()?;
        let child = as_user(
            "postgres",
            pg_bin("postgres")?.to_str().unwrap_or("postgres"),
        )
        .arg("-D")
        .arg(&data)
        .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"])
        .args(&tls_args)
        .arg("-k")
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
        let url = Url {
            engine: Engine::Postgres,
            username: "postgres".into(),
            password: password.into(),
            host: "127.0.0.1".into(),
            port,
            tls: tls.is_some(),
        };
        let s = Server {
            url,
            dir,
            child: Some(child),
        };
        wait_until("postgres", Duration::from_secs(30), || {
            Command::new(pg_bin("pg_isready").unwrap_or_else(|_| "pg_isready".into()))
                .args(["-h", "127.0.0.1", "-p", &port.to_string()])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })?;
        Ok(s)
    }

    /// A MariaDB server with `root` / `password` (for TCP logins from any host).
    pub fn mariadb(password: &str) -> std::io::Result<Server> {
        Server::mariadb_with(password, None)
    }

    /// A MariaDB server with `tls`'s certificate and `require_secure_transport`: a TCP
    /// login without TLS is refused.
    pub fn mariadb_tls(password: &str, tls: &Issued) -> std::io::Result<Server> {
        Server::mariadb_with(password, Some(tls))
    }

    fn mariadb_with(password: &str, tls: Option<&Issued>) -> std::io::Result<Server> {
        let dir = temp_dir("md")?;
        let mut tls_args = vec![];
        if let Some(t) = tls {
            let (cert, key, _) = write_certificates(&dir, t)?;
            tls_args = vec![
                format!("--ssl-cert={}", path_str(&cert)),
                format!("--ssl-key={}", path_str(&key)),
                "--require-secure-transport=ON".into(),
            ];
        }
        let data = dir.join("data");
        let st = Command::new("mariadb-install-db")
            .arg(format!("--datadir={}", data.display()))
            .args([
                "--user=root",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        if !st.success() {
            return Err(io_err("mariadb-install-db failed"));
        }
        let port = free_port()?;
        let sock = dir.join("sock");
        let child = Command::new("mariadbd")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--socket={}", sock.display()))
            .arg(format!("--pid-file={}", dir.join("pid").display()))
            .args([
                "--user=root",
                "--bind-address=127.0.0.1",
                "--skip-name-resolve",
            ])
            .arg(format!("--port={port}"))
            .args(&tls_args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let mut s = Server {
            url: Url {
                engine: Engine::Mysql,
                username: "root".into(),
                password: password.into(),
                host: "127.0.0.1".into(),
                port,
                tls: tls.is_some(),
            },
            dir: dir.clone(),
            child: Some(child),
        };
        wait_until("mariadbd", Duration::from_secs(60), || sock.exists())?;
        // Root starts passwordless on the socket, with host entries (127.0.0.1, ::1, the
        // host name) that would shadow a '%' account: drop the host-name one (ignored under
        // --skip-name-resolve) and give every other one the password.
        let sql = format!(
            "DELETE FROM mysql.global_priv WHERE Host NOT IN ('localhost', '127.0.0.1', '::1', '%');\nFLUSH PRIVILEGES;\nCREATE USER IF NOT EXISTS 'root'@'%' IDENTIFIED BY '{p}';\nGRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;\n{}FLUSH PRIVILEGES;\n",
            alter_all_hosts("root", password),
            p = sql_quote(password)
        );
        let mut c = Command::new("mariadb");
        c.arg(format!("--socket={}", sock.display()))
            .args(["-u", "root"]);
        if let Err(e) = run_client(c, &sql) {
            s.stop();
            return Err(io_err(format!("mariadb setup failed: {e}")));
        }
        Ok(s)
    }

    /// A Redis server whose default user has `password`.
    pub fn redis(password: &str) -> std::io::Result<Server> {
        Server::redis_with(password, None)
    }

    /// A Redis server that listens on its TLS port only (`port 0`, `tls-port`), with
    /// `tls`'s certificate and no client certificates asked for.
    pub fn redis_tls(password: &str, tls: &Issued) -> std::io::Result<Server> {
        Server::redis_with(password, Some(tls))
    }

    fn redis_with(password: &str, tls: Option<&Issued>) -> std::io::Result<Server> {
        let dir = temp_dir("rd")?;
        let port = free_port()?;
        let listen = match tls {
            None => format!("port {port}\n"),
            Some(t) => {
                let (cert, key, ca) = write_certificates(&dir, t)?;
                format!(
                    "port 0\ntls-port {port}\ntls-cert-file {}\ntls-key-file {}\n\
                     tls-ca-cert-file {}\ntls-auth-clients no\n",
                    path_str(&cert),
                    path_str(&key),
                    path_str(&ca)
                )
            }
        };
        let child = Command::new("redis-server")
            .arg("-")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let mut child = child?;
        // NB: the config (with the password) goes on stdin, not argv.
        if let Some(mut i) = child.stdin.take() {
            let conf = format!(
                "{listen}bind 127.0.0.1\nsave \"\"\nappendonly no\ndir {}\nrequirepass {password}\n",
                dir.display()
            );
            i.write_all(conf.as_bytes())?;
        }
        let s = Server {
            url: Url {
                engine: Engine::Redis,
                username: String::new(),
                password: password.into(),
                host: "127.0.0.1".into(),
                port,
                tls: tls.is_some(),
            },
            dir,
            child: Some(child),
        };
        wait_until("redis-server", Duration::from_secs(20), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        })?;
        Ok(s)
    }

    /// The URL with credentials, for `--real-db`.
    pub fn url_string(&self) -> String {
        let u = &self.url;
        u.with_credentials(&format!("{}:{}@", u.username, u.password))
    }

    /// Stop the server now (a test of "server down").
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SIGTERM first (clean shutdown), then SIGKILL.
            let _ = Command::new("kill").arg(c.id().to_string()).status();
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(10) {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_with_and_without_users() {
        let u = Url::parse("postgresql://postgres:S3cr%40t@127.0.0.1:5432").unwrap();
        assert_eq!(
            (u.engine, u.username.as_str(), u.password.as_str(), u.port),
            (Engine::Postgres, "postgres", "S3cr@t", 5432)
        );
        let r = Url::parse("redis://:pw@127.0.0.1:6380").unwrap();
        assert_eq!(
            (r.engine, r.username.as_str(), r.password.as_str()),
            (Engine::Redis, "", "pw")
        );
        assert_eq!(r.address(), "redis://127.0.0.1:6380");
        assert!(!u.tls && !r.tls);
        for tls in [
            "rediss://:pw@127.0.0.1:6380",
            "postgresql://postgres:pw@127.0.0.1:5432/postgres?sslmode=require",
            "mysql://root:pw@127.0.0.1:3306?ssl=true",
        ] {
            let u = Url::parse(tls).unwrap();
            assert!(u.tls, "{tls}");
            assert!(Url::parse(&u.address()).unwrap().tls, "{tls}");
        }
        let prefer = Url::parse("postgresql://postgres:pw@127.0.0.1:5432?sslmode=prefer").unwrap();
        assert!(!prefer.tls);
        assert!(Url::parse("ftp://x@h:1").is_err());
        assert!(Url::parse("mysql://root:pw@127.0.0.1").is_err());
    }
}
