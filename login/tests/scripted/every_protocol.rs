//! Every protocol at once: servers that echo the password, close or stall, and the
//! client's tests against them.

use std::time::Duration;

use rotate_login::bson::{Bson, Document};
use rotate_login::{login, login_within, mongodb, tds, LoginResult, Protocol};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::mysql::handshake_packet;
use crate::{pair, plain, run};

const ALL: [Protocol; 6] = [
    Protocol::Postgres,
    Protocol::Mysql,
    Protocol::Tds,
    Protocol::Mongodb,
    Protocol::Redis,
    Protocol::Elasticsearch,
];

/// What a hostile or careless server says first, with the password in it: a refusal and
/// another error, for each protocol (bytes as the protocol frames them).
fn echoes(p: Protocol, pw: &str) -> Vec<Vec<u8>> {
    let pg_err = |code: &str| {
        let body =
            format!("SFATAL\0VFATAL\0C{code}\0Mpassword \"{pw}\" is not right for user \"u\"\0\0");
        let mut m = vec![b'E'];
        m.extend_from_slice(&(body.len() as i32 + 4).to_be_bytes());
        m.extend_from_slice(body.as_bytes());
        m
    };
    let my_err = |code: u16| {
        let mut e = vec![0xff];
        e.extend_from_slice(&code.to_le_bytes());
        e.extend_from_slice(format!("#28000Access denied, you sent {pw}").as_bytes());
        let mut m = handshake_packet();
        m.extend_from_slice(&[e.len() as u8, 0, 0, 2]);
        m.extend_from_slice(&e);
        m
    };
    let tds_err = |n: i32| {
        let mut m = tds::packet(
            tds::REPLY,
            &tds::prelogin_payload(&[(0x01, vec![tds::ENCRYPT_NOT_SUP])]),
        );
        let mut t = tds::error_token(
            tds::TOKEN_ERROR,
            n,
            1,
            14,
            &format!("Login failed: {pw}"),
            "mssql",
        );
        t.extend(tds::done_token(2));
        m.extend(tds::packet(tds::REPLY, &t));
        m
    };
    let mongo_err = |code: i32| {
        let hello = Document::new().with("ok", Bson::Double(1.0));
        let fail = Document::new()
            .with("ok", Bson::Double(0.0))
            .with("errmsg", Bson::String(format!("bad password {pw}")))
            .with("code", Bson::Int32(code))
            .with("codeName", Bson::String(pw.to_string()));
        [
            mongodb::op_msg(10, 1, &hello),
            mongodb::op_msg(11, 2, &fail),
        ]
        .concat()
    };
    let http = |status: &str| {
        let basic = rotate_login::elasticsearch::basic_credentials("u", pw);
        let body =
            format!(r#"{{"error":{{"type":"x","reason":"you sent {pw} as Basic {basic}"}}}}"#);
        format!(
            "HTTP/1.1 {status}\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    };
    match p {
        Protocol::Postgres => vec![pg_err("28P01"), pg_err("53300")],
        Protocol::Mysql => vec![my_err(1045), my_err(1130)],
        Protocol::Tds => vec![tds_err(18456), tds_err(4060)],
        Protocol::Mongodb => vec![mongo_err(18), mongo_err(13)],
        Protocol::Redis => vec![
            format!("-WRONGPASS {pw}\r\n").into_bytes(),
            format!("-ERR {pw}\r\n").into_bytes(),
            format!("HTTP/1.1 {pw}\r\n").into_bytes(),
        ],
        Protocol::Elasticsearch => vec![http("401 Unauthorized"), http("500 Oops")],
    }
}

#[tokio::test]
async fn no_outcome_shows_the_password_even_when_the_server_echoes_it() {
    let pw = "Echo-Me-Not-42";
    for p in ALL {
        for reply in echoes(p, pw) {
            let req = plain("u", pw);
            // `run` asserts that neither the outcome, its detail nor the request's Debug
            // contains the password.
            let out = run(p, &req, |mut s| async move {
                s.write_all(&reply).await.unwrap();
                let mut sink = Vec::new();
                let _ = s.read_to_end(&mut sink).await;
            })
            .await;
            assert!(
                matches!(
                    out.result,
                    LoginResult::Rejected { .. } | LoginResult::Error
                ),
                "{p}: {out:?}"
            );
            assert!(out.detail.contains("********"), "{p}: {}", out.detail);
        }
    }
}

#[tokio::test]
async fn a_stream_closed_before_the_server_speaks_is_unreachable_for_every_protocol() {
    // As a port-forward to a pod whose database is down looks.
    for p in ALL {
        let (c, s) = pair();
        drop(s);
        let out = login(p, c, &plain("u", "pw-closed")).await;
        assert_eq!(out.result, LoginResult::Unreachable, "{p}: {out:?}");
    }
}

#[tokio::test]
async fn a_silent_server_is_unreachable_and_one_that_stalls_mid_exchange_is_an_error() {
    for p in ALL {
        let (c, _s) = pair();
        let out = login_within(p, c, &plain("u", "pw-silent"), Duration::from_millis(200)).await;
        assert_eq!(out.result, LoginResult::Unreachable, "{p}: {out:?}");
        assert!(out.latency >= Duration::from_millis(200));
    }
    let (c, mut s) = pair();
    s.write_all(&handshake_packet()[..10]).await.unwrap();
    let out = login_within(
        Protocol::Mysql,
        c,
        &plain("u", "pw-stall"),
        Duration::from_millis(200),
    )
    .await;
    assert_eq!(out.result, LoginResult::Error, "{out:?}");
    assert!(out.detail.contains("stalled"), "{}", out.detail);
}

#[tokio::test]
async fn a_server_that_closes_mid_exchange_is_an_error() {
    let (c, mut s) = pair();
    s.write_all(&handshake_packet()[..10]).await.unwrap();
    drop(s);
    let out = login(Protocol::Mysql, c, &plain("u", "pw-closed")).await;
    assert_eq!(out.result, LoginResult::Error, "{out:?}");
}
