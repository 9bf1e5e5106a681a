//! PostgreSQL: scripted servers for cleartext password auth and a SCRAM impostor, and the
//! client's tests against them (the live tests cover the rest against a real server).

use rotate_login::{scram, LoginResult, Protocol};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use crate::{plain, run};

/// A PostgreSQL PasswordMessage / SASL response ('p') body.
async fn read_password_message(s: &mut DuplexStream) -> Vec<u8> {
    let mut h = [0u8; 5];
    s.read_exact(&mut h).await.unwrap();
    assert_eq!(h[0], b'p');
    let mut b = vec![0; i32::from_be_bytes(h[1..5].try_into().unwrap()) as usize - 4];
    s.read_exact(&mut b).await.unwrap();
    b
}

#[tokio::test]
async fn postgres_cleartext_and_a_wrong_server_signature_are_handled() {
    // Cleartext: the fake server reads the PasswordMessage and checks it.
    let out = run(
        Protocol::Postgres,
        &plain("u", "Pg-Clear-1"),
        |mut s| async move {
            let mut startup = vec![0u8; 4];
            s.read_exact(&mut startup).await.unwrap();
            let len = i32::from_be_bytes(startup[..4].try_into().unwrap()) as usize;
            startup.resize(len, 0);
            s.read_exact(&mut startup[4..]).await.unwrap();
            s.write_all(&[b'R', 0, 0, 0, 8, 0, 0, 0, 3]).await.unwrap();
            let mut h = [0u8; 5];
            s.read_exact(&mut h).await.unwrap();
            assert_eq!(h[0], b'p');
            let mut pw = vec![0; i32::from_be_bytes(h[1..5].try_into().unwrap()) as usize - 4];
            s.read_exact(&mut pw).await.unwrap();
            assert_eq!(pw, b"Pg-Clear-1\0");
            s.write_all(&[b'R', 0, 0, 0, 8, 0, 0, 0, 0, b'Z', 0, 0, 0, 5, b'I'])
                .await
                .unwrap();
            let mut rest = Vec::new();
            let _ = s.read_to_end(&mut rest).await;
            assert_eq!(rest, [b'X', 0, 0, 0, 4], "Terminate");
        },
    )
    .await;
    assert_eq!(out.result, LoginResult::Accepted, "{out:?}");
    assert_eq!(out.detail, "authenticated (password)");
    assert!(
        out.password_in_clear,
        "a cleartext request over plain TCP is flagged"
    );

    // SCRAM with a server that does not know the password (an impostor): its final
    // signature is wrong, and the client says so instead of trusting AuthenticationOk.
    let out = run(
        Protocol::Postgres,
        &plain("u", "Pg-Scram-1"),
        |mut s| async move {
            let mut startup = vec![0u8; 4];
            s.read_exact(&mut startup).await.unwrap();
            let len = i32::from_be_bytes(startup[..4].try_into().unwrap()) as usize;
            startup.resize(len, 0);
            s.read_exact(&mut startup[4..]).await.unwrap();
            let msg = |kind: u8, body: &[u8]| {
                let mut m = vec![kind];
                m.extend_from_slice(&(body.len() as i32 + 4).to_be_bytes());
                m.extend_from_slice(body);
                m
            };
            s.write_all(&msg(b'R', b"\0\0\0\x0aSCRAM-SHA-256\0\0"))
                .await
                .unwrap();
            let init = read_password_message(&mut s).await;
            // "SCRAM-SHA-256\0", length, client-first
            let client_first = String::from_utf8(init[14 + 4..].to_vec()).unwrap();
            assert!(client_first.starts_with("n,,n=,r="), "{client_first}");
            let server_first = scram::server::first(&client_first, "SRV", b"salt-salt-salt", 4096);
            let mut body = 11i32.to_be_bytes().to_vec();
            body.extend_from_slice(server_first.as_bytes());
            s.write_all(&msg(b'R', &body)).await.unwrap();
            let _client_final = read_password_message(&mut s).await;
            let mut body = 12i32.to_be_bytes().to_vec();
            body.extend_from_slice(b"v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
            s.write_all(&msg(b'R', &body)).await.unwrap();
            s.write_all(&msg(b'R', &[0, 0, 0, 0])).await.unwrap();
            let mut rest = Vec::new();
            let _ = s.read_to_end(&mut rest).await;
        },
    )
    .await;
    assert_eq!(out.result, LoginResult::Error, "{out:?}");
    assert!(!out.password_in_clear, "SCRAM never sends the password");
    assert!(
        out.detail.contains("SCRAM signature is wrong"),
        "{}",
        out.detail
    );
}
