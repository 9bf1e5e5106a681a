//! MongoDB: a scripted mongod that runs real SCRAM (SHA-1 and SHA-256) over OP_MSG, and
//! the client's tests against it.

use rotate_login::bson::{Bson, Document};
use rotate_login::{mongodb, scram, LoginResult, Protocol};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::{plain, rejected, run, Io};

struct MongoUser {
    name: &'static str,
    password: &'static str,
    mechs: Vec<&'static str>,
    hello_known: bool,
}

const OP_REPLY: i32 = 1;
const OP_QUERY: i32 = 2004;

/// One request: OP_MSG, or OP_QUERY on `<db>.$cmd`, which drivers still use for the
/// first `isMaster` (PyMongo 3) and mongod answers with OP_REPLY. Returns (request id,
/// opcode, command with `$db` set as OP_MSG carries it); None at the end of the stream.
async fn read_request<S: AsyncRead + Unpin + ?Sized>(s: &mut S) -> Option<(i32, i32, Document)> {
    let mut h = [0u8; 16];
    s.read_exact(&mut h).await.ok()?;
    let word = |b: &[u8], i: usize| i32::from_le_bytes(b[i..i + 4].try_into().unwrap());
    let (len, id, op) = (word(&h, 0) as usize, word(&h, 4), word(&h, 12));
    let mut body = vec![0; len - 16];
    s.read_exact(&mut body).await.ok()?;
    if op == mongodb::OP_MSG {
        let mut m = h.to_vec();
        m.extend_from_slice(&body);
        let (_, _, cmd) = mongodb::read_op_msg(&mut m.as_slice())
            .await
            .unwrap()
            .expect("a well-formed OP_MSG from the client");
        return Some((id, op, cmd));
    }
    assert_eq!(op, OP_QUERY, "OP_MSG or OP_QUERY");
    let nul = 4 + body[4..].iter().position(|b| *b == 0).unwrap();
    let collection = std::str::from_utf8(&body[4..nul]).unwrap();
    let db = collection.strip_suffix(".$cmd").expect("a command");
    let doc = &body[nul + 9..];
    let mut cmd = Document::decode(&doc[..word(doc, 0) as usize]).expect("BSON");
    cmd.0.push(("$db".into(), Bson::String(db.into())));
    Some((id, op, cmd))
}

/// The reply in the form the request came in.
fn reply_to(id: i32, op: i32, reply: &Document) -> Vec<u8> {
    if op == mongodb::OP_MSG {
        return mongodb::op_msg(100 + id, id, reply);
    }
    let doc = reply.encode();
    let mut m = Vec::new();
    m.extend_from_slice(&((36 + doc.len()) as i32).to_le_bytes());
    m.extend_from_slice(&(100 + id).to_le_bytes());
    m.extend_from_slice(&id.to_le_bytes());
    m.extend_from_slice(&OP_REPLY.to_le_bytes());
    m.extend_from_slice(&[0; 4 + 8 + 4]); // responseFlags, cursorID, startingFrom
    m.extend_from_slice(&1i32.to_le_bytes()); // numberReturned
    m.extend_from_slice(&doc);
    m
}

/// What the fake mongod saw: the commands, and its SCRAM verdict (None: no saslContinue).
#[derive(Debug, Default)]
struct MongoSeen {
    commands: Vec<String>,
    authenticated: Option<bool>,
}

/// A MongoDB that runs real SCRAM (its own salt and iteration count) against `user`.
async fn fake_mongod<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    s: S,
    user: MongoUser,
) -> MongoSeen {
    let mut s: Io = Box::new(s);
    let salt = b"fake-mongod-salt";
    let iterations = 4096;
    let mut conversation: Option<(scram::Hash, String, String)> = None;
    let mut seen = MongoSeen::default();
    while let Some((id, op, cmd)) = read_request(&mut s).await {
        let name = cmd.0[0].0.clone();
        seen.commands.push(name.clone());
        let reply = match name.as_str() {
            "hello" if !user.hello_known => Document::new()
                .with("ok", Bson::Double(0.0))
                .with("errmsg", Bson::String("no such command: 'hello'".into()))
                .with("code", Bson::Int32(59))
                .with("codeName", Bson::String("CommandNotFound".into())),
            // NB: PyMongo 3 says `ismaster`; a driver's monitoring connections do not ask
            // for saslSupportedMechs.
            "hello" | "isMaster" | "ismaster" => {
                assert_eq!(cmd.get("$db"), Some(&Bson::String("admin".into())));
                let asked = cmd
                    .get("saslSupportedMechs")
                    .and_then(Bson::as_str)
                    .unwrap_or_default();
                let mut d = Document::new()
                    .with("helloOk", Bson::Bool(true))
                    .with("isWritablePrimary", Bson::Bool(true))
                    .with(
                        "topologyVersion",
                        Bson::Document(
                            Document::new()
                                .with("processId", Bson::Other(0x07, vec![1; 12]))
                                .with("counter", Bson::Int64(0)),
                        ),
                    )
                    .with(
                        "localTime",
                        Bson::Other(0x09, 1_700_000_000_000i64.to_le_bytes().to_vec()),
                    )
                    .with("maxWireVersion", Bson::Int32(21));
                if asked == format!("admin.{}", user.name) {
                    d = d.with(
                        "saslSupportedMechs",
                        Bson::Array(
                            user.mechs
                                .iter()
                                .map(|m| Bson::String(m.to_string()))
                                .collect(),
                        ),
                    );
                }
                d.with("ok", Bson::Double(1.0))
            }
            "saslStart" => {
                assert_eq!(cmd.get("$db"), Some(&Bson::String("admin".into())));
                let mech = cmd
                    .get("mechanism")
                    .and_then(Bson::as_str)
                    .unwrap()
                    .to_string();
                let Some(Bson::Binary(0, p)) = cmd.get("payload") else {
                    panic!("payload")
                };
                let client_first = String::from_utf8(p.clone()).unwrap();
                assert!(client_first.starts_with(&format!(
                    "n,,n={},r=",
                    scram::escape_username(cmd_user(&client_first))
                )));
                let hash = if mech == "SCRAM-SHA-1" {
                    scram::Hash::Sha1
                } else {
                    scram::Hash::Sha256
                };
                let server_first =
                    scram::server::first(&client_first, "SRVNONCE", salt, iterations);
                conversation = Some((hash, client_first, server_first.clone()));
                Document::new()
                    .with("conversationId", Bson::Int32(1))
                    .with("done", Bson::Bool(false))
                    .with("payload", Bson::Binary(0, server_first.into_bytes()))
                    .with("ok", Bson::Double(1.0))
            }
            "saslContinue" => {
                let (hash, client_first, server_first) =
                    conversation.take().expect("saslStart first");
                let Some(Bson::Binary(0, p)) = cmd.get("payload") else {
                    panic!("payload")
                };
                let password = match hash {
                    scram::Hash::Sha1 => mongodb::sha1_password(user.name, user.password),
                    scram::Hash::Sha256 => user.password.to_string(),
                };
                let keys = scram::Keys::derive(hash, password.as_bytes(), salt, iterations);
                let known =
                    cmd_user(&client_first) == user.name && user.mechs.contains(&hash.mechanism());
                let verdict = scram::server::verify(
                    hash,
                    &keys,
                    &client_first,
                    &server_first,
                    &String::from_utf8_lossy(p),
                )
                .ok()
                .filter(|_| known);
                seen.authenticated = Some(verdict.is_some());
                match verdict {
                    Some(server_final) => Document::new()
                        .with("conversationId", Bson::Int32(1))
                        .with("done", Bson::Bool(true))
                        .with("payload", Bson::Binary(0, server_final.into_bytes()))
                        .with("ok", Bson::Double(1.0)),
                    _ => Document::new()
                        .with("ok", Bson::Double(0.0))
                        .with("errmsg", Bson::String("Authentication failed.".into()))
                        .with("code", Bson::Int32(18))
                        .with("codeName", Bson::String("AuthenticationFailed".into())),
                }
            }
            "ping" | "endSessions" if seen.authenticated == Some(true) => {
                Document::new().with("ok", Bson::Double(1.0))
            }
            other => panic!("unexpected command {other}"),
        };
        s.write_all(&reply_to(id, op, &reply)).await.unwrap();
    }
    seen
}

fn cmd_user(client_first: &str) -> &str {
    client_first
        .trim_start_matches("n,,")
        .split(',')
        .next()
        .unwrap()
        .trim_start_matches("n=")
}

fn mongo_user(mechs: Vec<&'static str>) -> MongoUser {
    MongoUser {
        name: "root",
        password: "Mongo-Secret-1",
        mechs,
        hello_known: true,
    }
}

#[tokio::test]
async fn mongodb_scram_sha_256_proof_is_verified_by_the_server_and_accepted() {
    let out = run(Protocol::Mongodb, &plain("root", "Mongo-Secret-1"), |s| {
        fake_mongod(s, mongo_user(vec!["SCRAM-SHA-1", "SCRAM-SHA-256"]))
    })
    .await;
    assert_eq!(out.result, LoginResult::Accepted, "{out:?}");
    assert_eq!(out.detail, "authenticated (SCRAM-SHA-256) on admin");
}

#[tokio::test]
async fn mongodb_wrong_password_is_rejected_with_code_18() {
    let out = run(Protocol::Mongodb, &plain("root", "not-it"), |s| {
        fake_mongod(s, mongo_user(vec!["SCRAM-SHA-256"]))
    })
    .await;
    assert_eq!(out.result, rejected("18"), "{out:?}");
    assert_eq!(
        out.detail,
        "AuthenticationFailed: Authentication failed. (18)"
    );
    let out = run(Protocol::Mongodb, &plain("nobody", "Mongo-Secret-1"), |s| {
        fake_mongod(s, mongo_user(vec!["SCRAM-SHA-256"]))
    })
    .await;
    assert_eq!(out.result, rejected("18"), "{out:?}");
}

#[tokio::test]
async fn mongodb_user_with_only_scram_sha_1_logs_in_with_it() {
    let out = run(Protocol::Mongodb, &plain("root", "Mongo-Secret-1"), |s| {
        fake_mongod(s, mongo_user(vec!["SCRAM-SHA-1"]))
    })
    .await;
    assert_eq!(out.result, LoginResult::Accepted, "{out:?}");
    assert_eq!(out.detail, "authenticated (SCRAM-SHA-1) on admin");
}

#[tokio::test]
async fn mongodb_before_hello_falls_back_to_is_master() {
    let user = MongoUser {
        hello_known: false,
        ..mongo_user(vec!["SCRAM-SHA-256"])
    };
    let out = run(Protocol::Mongodb, &plain("root", "Mongo-Secret-1"), |s| {
        fake_mongod(s, user)
    })
    .await;
    assert_eq!(out.result, LoginResult::Accepted, "{out:?}");
}

/// PyMongo logs in and pings; prints `accepted`, or `refused CODE` and exits 1. The
/// password comes on stdin, the mechanism (or `default`: negotiated) as the argument.
const PYMONGO: &str = r#"
import sys, pymongo
from pymongo.errors import OperationFailure
port, mech = int(sys.argv[1]), sys.argv[2]
password = sys.stdin.readline().rstrip("\n")
opts = {} if mech == "default" else {"authMechanism": mech}
c = pymongo.MongoClient("127.0.0.1", port, username="root", password=password,
    authSource="admin", serverSelectionTimeoutMS=5000, connectTimeoutMS=5000, **opts)
try:
    c.admin.command("ping")
    print("accepted")
except OperationFailure as e:
    print("refused", e.code)
    sys.exit(1)
finally:
    c.close()
"#;

/// PyMongo (Debian's python3-pymongo, with Debian's python3) logs in to the script with
/// SCRAM-SHA-256 (negotiated through saslSupportedMechs) and SCRAM-SHA-1: accepted and
/// pinged with the right password, refused with code 18 with a wrong one.
#[tokio::test]
async fn mongodb_script_is_vouched_for_by_pymongo() {
    for mech in ["default", "SCRAM-SHA-1"] {
        for (password, accepted) in [("Mongo-Secret-1", true), ("Wrong-Secret-2", false)] {
            let server = crate::vouch::serve(|s| {
                fake_mongod(s, mongo_user(vec!["SCRAM-SHA-1", "SCRAM-SHA-256"]))
            })
            .await;
            let port = server.port();
            let ran = crate::vouch::client(
                "/usr/bin/python3",
                &["-c", PYMONGO, &port, mech],
                &format!("{password}\n"),
                password,
            )
            .await;
            let seen = server.finish().await;
            assert_eq!(ran.ok(), accepted, "pymongo {mech}: {}", ran.out);
            let said = if accepted { "accepted" } else { "refused 18" };
            assert_eq!(ran.out.trim(), said, "pymongo {mech}");
            let logins: Vec<_> = seen.iter().filter_map(|s| s.authenticated).collect();
            assert_eq!(logins, [accepted], "one SCRAM conversation: {seen:?}");
            let pinged = seen.iter().any(|s| s.commands.iter().any(|c| c == "ping"));
            assert_eq!(pinged, accepted, "{seen:?}");
        }
    }
}
