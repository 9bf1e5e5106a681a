//! Passwords the plugin generates itself (`--generate`): drawn from the OS CSPRNG, from an
//! alphabet that is safe unquoted in URLs, shells, SQL and YAML, and meeting every engine's
//! policy by construction rather than by retrying until one passes.
//!
//! The alphabet is ASCII letters and digits only. That is what HanaDB allows anyway, and
//! every other character people reach for breaks somewhere: `-` starts a shell option or
//! an SQL comment, `.`/`~`/`_` have meanings in some connection strings or LIKE patterns,
//! and `%`, `@`, `:`, `/` need escaping in URLs. 24 characters from 62 give about 142 bits.
//!
//! Construction: one upper-case letter, one lower-case letter and one digit, the rest from
//! the whole alphabet, shuffled (Fisher-Yates, unbiased draws); if a digit lands first, it
//! is swapped with the first letter, so the password starts with a letter (HanaDB).

use rand::rand_core::UnwrapErr;
use rand::rngs::SysRng;
use rand::RngExt;

use crate::creds::Password;
use crate::engines::PasswordPolicy;

/// The length of generated passwords.
pub const DEFAULT_LENGTH: usize = 24;

const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const LOWER: &[u8] = b"abcdefghijklmnopqrstuvwxyz";
const DIGITS: &[u8] = b"0123456789";

/// Every character a generated password may hold.
pub fn alphabet() -> Vec<u8> {
    [UPPER, LOWER, DIGITS].concat()
}

/// A new password of [`DEFAULT_LENGTH`] that meets `policy` for `username`.
pub fn generate(policy: PasswordPolicy, username: &str) -> Password {
    generate_with_length(policy, username, DEFAULT_LENGTH)
}

/// A new password of `length` (at least 8) that meets `policy` for `username`.
pub fn generate_with_length(policy: PasswordPolicy, username: &str, length: usize) -> Password {
    // NB: an OS RNG failure is unrecoverable for a password generator: UnwrapErr panics
    // rather than hand out a weak value.
    let mut rng = UnwrapErr(SysRng);
    let length = length.max(8);
    let all = alphabet();
    loop {
        let mut chars: Vec<u8> = vec![
            UPPER[rng.random_range(0..UPPER.len())],
            LOWER[rng.random_range(0..LOWER.len())],
            DIGITS[rng.random_range(0..DIGITS.len())],
        ];
        chars.extend((3..length).map(|_| all[rng.random_range(0..all.len())]));
        for i in (1..chars.len()).rev() {
            chars.swap(i, rng.random_range(0..=i));
        }
        if !chars[0].is_ascii_alphabetic() {
            // There is at least one letter: the upper- and lower-case ones put in above.
            let first_letter = chars.iter().position(u8::is_ascii_alphabetic).unwrap_or(0);
            chars.swap(0, first_letter);
        }
        let password = Password::new(String::from_utf8(chars).unwrap_or_default());
        // NB: Neo4j refuses a password equal to the username; with 24 random characters
        // this never happens, but "never" is cheap to make certain.
        if crate::creds::check_policy(policy, username, &password).is_ok() {
            return password;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::creds::check_policy;
    use std::collections::HashSet;

    const SAMPLES: usize = 10_000;

    fn every_policy() -> [(PasswordPolicy, &'static str); 4] {
        [
            (PasswordPolicy::Any, "admin"),
            (PasswordPolicy::Mssql, "sa"),
            (PasswordPolicy::Neo4j, "neo4j"),
            (PasswordPolicy::HanaDb, "SYSTEM"),
        ]
    }

    #[test]
    fn ten_thousand_generated_passwords_per_policy_all_meet_it() {
        let alphabet: HashSet<char> = alphabet().into_iter().map(char::from).collect();
        for (policy, user) in every_policy() {
            for _ in 0..SAMPLES {
                let p = generate(policy, user);
                let s = p.expose();
                assert_eq!(s.len(), DEFAULT_LENGTH, "{policy:?}");
                assert!(s.chars().all(|c| alphabet.contains(&c)), "{policy:?}");
                assert!(s.starts_with(|c: char| c.is_ascii_alphabetic()));
                assert!(s.chars().any(|c| c.is_ascii_uppercase()));
                assert!(s.chars().any(|c| c.is_ascii_lowercase()));
                assert!(s.chars().any(|c| c.is_ascii_digit()));
                assert_ne!(s, user);
                check_policy(policy, user, &p).unwrap_or_else(|e| panic!("{policy:?}: {e}"));
            }
        }
    }

    #[test]
    fn generated_passwords_are_safe_unquoted_in_urls_shells_and_sql() {
        for c in alphabet() {
            let c = char::from(c);
            assert!(c.is_ascii_alphanumeric(), "{c:?}");
        }
        // What a URL-encoder, a shell and an SQL string literal would have to escape.
        for bad in [
            '\'', '"', '\\', '`', '$', '%', '@', ':', '/', '?', '#', '&', ' ', '-', ';',
        ] {
            assert!(!alphabet().contains(&(bad as u8)), "{bad:?}");
        }
    }

    #[test]
    fn generated_passwords_use_the_whole_alphabet_in_every_position_but_the_first() {
        // A weak shuffle or a biased draw would leave characters or positions unused.
        let mut seen: Vec<HashSet<u8>> = vec![HashSet::new(); DEFAULT_LENGTH];
        let mut distinct = HashSet::new();
        for _ in 0..SAMPLES {
            let p = generate(PasswordPolicy::Any, "u");
            distinct.insert(p.expose().to_string());
            for (i, b) in p.expose().bytes().enumerate() {
                seen[i].insert(b);
            }
        }
        assert_eq!(distinct.len(), SAMPLES, "no repeats");
        assert_eq!(seen[0].len(), 52, "the first character is any letter");
        for (i, s) in seen.iter().enumerate().skip(1) {
            assert_eq!(s.len(), 62, "position {i}");
        }
    }

    #[test]
    fn a_requested_length_below_eight_is_raised_to_eight() {
        assert_eq!(
            generate_with_length(PasswordPolicy::Neo4j, "neo4j", 3)
                .expose()
                .len(),
            8
        );
        assert_eq!(
            generate_with_length(PasswordPolicy::Any, "u", 40)
                .expose()
                .len(),
            40
        );
    }
}
