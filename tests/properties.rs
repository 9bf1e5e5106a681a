//! Property tests: no input panics the parsers and decoders that read what users type and
//! what clusters hold (TYPE/NAME, durations, label selectors, Secrets, passwords,
//! certificates), and what the plugin generates meets the rules it checks.

use std::collections::BTreeMap;

use base64::Engine as _;
use kubectl_rotate::cli::TargetArgs;
use kubectl_rotate::creds::{self, Password};
use kubectl_rotate::duration::{human, human_secs, GoDuration, OlderThan};
use kubectl_rotate::engines::ENGINES;
use kubectl_rotate::model::secret::SecretSummary;
use kubectl_rotate::target::{check_selector, validate_name, Target};
use proptest::prelude::*;

/// Strings of any characters, short ones mostly, with the separators the parsers split on.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![".{0,40}", "[a-z0-9./=!,() -]{0,40}", "[\\x00-\\x7f]{0,20}",]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn type_and_name_parsing_never_panics_and_names_what_it_accepts(
        target in text(),
        name in proptest::option::of(text()),
    ) {
        if let Ok(t) = Target::parse(&TargetArgs { target, name }) {
            prop_assert!(validate_name(&t.name).is_ok());
        }
    }

    #[test]
    fn durations_parse_or_refuse_and_always_print(s in text(), secs in any::<i64>(), d in any::<u64>()) {
        let _ = s.parse::<GoDuration>();
        if let Ok(age) = s.parse::<OlderThan>() {
            prop_assert!(!age.get().is_zero());
            prop_assert!(i64::try_from(age.get().as_secs()).is_ok());
        }
        prop_assert!(!human_secs(secs).is_empty());
        prop_assert!(!human(std::time::Duration::from_secs(d)).is_empty());
    }

    #[test]
    fn label_selectors_never_panic(s in text()) {
        let _ = check_selector(&s);
    }

    #[test]
    fn generated_label_selectors_are_accepted(
        key in "[a-z][a-z0-9]{0,10}(/[a-z][a-z0-9_.-]{0,10}[a-z0-9])?",
        value in "([a-z0-9]([a-z0-9_.-]{0,10}[a-z0-9])?)?",
        op in prop_oneof![Just("="), Just("=="), Just("!=")],
    ) {
        let (equality, set, absent) = (
            format!("{key}{op}{value}"),
            format!("{key} in ({value})"),
            format!("!{key}"),
        );
        for selector in [equality, set, absent] {
            let accepted = check_selector(&selector).is_ok();
            prop_assert!(accepted, "refused: {}", selector);
        }
    }

    #[test]
    fn secrets_of_any_shape_decode_without_panicking(
        data in proptest::collection::btree_map(
            prop_oneof![Just("tls.crt".to_string()), Just("ca.crt".to_string()), "[a-z.-]{1,12}"],
            prop_oneof![
                ".{0,40}",
                proptest::collection::vec(any::<u8>(), 0..64)
                    .prop_map(|b| base64::engine::general_purpose::STANDARD.encode(b)),
            ],
            0..6,
        ),
        kind in 0usize..4,
    ) {
        let data_json: serde_json::Value = match kind {
            0 => serde_json::json!(data),
            1 => serde_json::Value::Null,
            2 => serde_json::json!(["not", "a", "map"]),
            _ => serde_json::json!(42),
        };
        let v = serde_json::json!({"metadata": {"name": "x"}, "type": "Opaque", "data": data_json});
        let _ = serde_json::from_value::<SecretSummary>(v);
    }

    #[test]
    fn credentials_are_read_from_any_secret_data_without_panicking(
        raw in proptest::collection::btree_map(
            prop_oneof![
                Just("username".to_string()), Just("password".to_string()),
                Just("username.prev".to_string()), Just("password.prev".to_string()),
                Just("authData".to_string()), Just("authData.prev".to_string()),
                Just("api-key".to_string()), "[a-zA-Z.-]{1,14}",
            ],
            proptest::collection::vec(any::<u8>(), 0..40),
            0..8,
        ),
    ) {
        let data: BTreeMap<String, k8s_openapi::ByteString> = raw
            .into_iter()
            .map(|(k, v)| (k, k8s_openapi::ByteString(v)))
            .collect();
        let decoded = creds::decode_data(Some(&data));
        for engine in ENGINES {
            let _ = creds::previous(engine, &decoded);
            let _ = creds::pair(engine, "s", &decoded, None);
            let _ = creds::current_username(engine, &decoded);
        }
    }

    #[test]
    fn password_policies_never_panic_and_never_echo_the_password(
        user in text(),
        pw in ".{0,200}",
    ) {
        for engine in ENGINES {
            if let Err(why) = creds::check_policy(engine.password_policy, &user, &Password::new(pw.clone())) {
                let echoes = pw.len() >= 4 && why.contains(&pw);
                prop_assert!(!echoes, "the error echoes the password: {}", why);
            }
        }
    }

    #[test]
    fn certificates_of_any_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
        let pem = format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", b64);
        let _ = kubectl_rotate::tls::earliest_not_after(&pem);
        let _ = kubectl_rotate::tls::earliest_not_after(&String::from_utf8_lossy(&bytes));
    }
}

#[test]
fn generated_passwords_meet_every_engines_policy() {
    for engine in ENGINES {
        let user = engine.admin_user.unwrap_or("someone");
        for _ in 0..200 {
            let p = kubectl_rotate::password::generate(engine.password_policy, user);
            assert!(
                creds::check_policy(engine.password_policy, user, &p).is_ok(),
                "{}",
                engine.kind
            );
        }
    }
}
