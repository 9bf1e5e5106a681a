//! MongoDB: a scripted mongod that runs real SCRAM (SHA-1 and SHA-256) over OP_MSG, and
//! the client's tests against it.

use rotate_login::bson::{Bson, Document};
use rotate_login::{mongodb, scram, LoginResult, Protocol};
use tokio::io::{AsyncWriteExt, DuplexStream};

use crate::{plain, rejected, run, Io};

struct MongoUser {
    name: &'static str,
    password: &'static str,
    mechs: Vec<&'static str>,
    hello_known: bool,
}

/// A MongoDB that runs real SCRAM (its own salt and iteration count) against `user`.
async fn fake_mongod(s: DuplexStream, user: MongoUser) {
    let mut s: Io = Box::new(s);
    let salt = b"fake-mongod-salt";
    let iterations = 4096;
    let mut conversation: Option<(scram::Hash, String, String)> = None;
    while let Ok(msg) = mongodb::read_op_msg(&mut s).await {
        let (id, _, cmd) = msg.expect("a well-formed OP_MSG from the client");
        let name = cmd.0[0].0.clone();
        let reply = match name.as_str() {
            "hello" if !user.hello_known => Document::new()
                .with("ok", Bson::Double(0.0))
                .with("errmsg", Bson::String("no such command: 'hello'".into()))
                .with("code", Bson::Int32(59))
                .with("codeName", Bson::String("CommandNotFound".into())),
            "hello" | "isMaster" => {
                assert_eq!(cmd.get("$db"), Some(&Bson::String("admin".into())));
                let asked = cmd
                    .get("saslSupportedMechs")
                    .and_then(Bson::as_str)
                    .unwrap();
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
                match scram::server::verify(
                    hash,
                    &keys,
                    &client_first,
                    &server_first,
                    &String::from_utf8_lossy(p),
                ) {
                    Ok(server_final) if known => Document::new()
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
            other => panic!("unexpected command {other}"),
        };
        s.write_all(&mongodb::op_msg(100 + id, id, &reply))
            .await
            .unwrap();
    }
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
