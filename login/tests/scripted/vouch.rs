//! Real clients vouch for the scripted servers: each script also serves TCP connections on
//! 127.0.0.1, a client from Debian's packages (tsql, PyMongo, curl, the MariaDB client)
//! logs in to it as a subprocess, and its tests (in each protocol's module) check that the
//! real client is accepted with the right password, refused with a wrong one, and that the
//! script saw the login. A script that a real client disagrees with is no stand-in for the
//! real server.

use std::future::Future;
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A scripted server on an ephemeral port of 127.0.0.1, one script run per connection.
pub(crate) struct Served<T> {
    pub addr: SocketAddr,
    stop: oneshot::Sender<()>,
    accept: JoinHandle<Vec<JoinHandle<T>>>,
}

/// Serve `script` on every connection until [`Served::finish`].
pub(crate) async fn serve<T, F, Fut>(script: F) -> Served<T>
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, mut stopped) = oneshot::channel();
    let accept = tokio::spawn(async move {
        let mut conns = Vec::new();
        loop {
            tokio::select! {
                _ = &mut stopped => return conns,
                conn = listener.accept() => {
                    let (s, _) = conn.unwrap();
                    conns.push(tokio::spawn(script(s)));
                }
            }
        }
    });
    Served { addr, stop, accept }
}

impl<T> Served<T> {
    pub fn port(&self) -> String {
        self.addr.port().to_string()
    }

    /// Stop accepting and wait for every connection's script; what each returned, in the
    /// order they connected. A script whose check failed (a panic) fails the test.
    pub async fn finish(self) -> Vec<T> {
        let _ = self.stop.send(());
        let conns = self.accept.await.expect("the accept loop");
        let mut out = Vec::new();
        for c in conns {
            let r = tokio::time::timeout(Duration::from_secs(10), c)
                .await
                .expect("the script ends when the client has gone");
            out.push(r.expect("the scripted server's checks pass"));
        }
        out
    }
}

/// What a real client did.
pub(crate) struct Ran {
    pub code: Option<i32>,
    pub out: String,
}

impl Ran {
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }
}

/// Run a real client with `stdin`, within 30 s; stdout and stderr together, with
/// `password` masked so a failed assertion does not print it.
pub(crate) async fn client(program: &str, args: &[&str], stdin: &str, password: &str) -> Ran {
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| {
            panic!("{program}: {e} (scripts/ensure-test-packages.sh installs the real clients)")
        });
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).await.unwrap();
    drop(input);
    let done = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{program} did not finish within 30 s"))
        .unwrap();
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&done.stdout),
        String::from_utf8_lossy(&done.stderr)
    );
    Ran {
        code: done.status.code(),
        out: out.replace(password, "********"),
    }
}
