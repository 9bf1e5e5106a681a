//! Certificate expiry of the TLS Secrets a database references (`spec.tls`), with Azure
//! Stack's thresholds: a warning 90 days before, critical 30 days before (seeds/004).
//!
//! Only the validity's `notAfter` is read, by walking the DER just far enough to reach it:
//! a certificate is public, but pulling in a full X.509 parser for one field is not worth
//! a dependency. Anything that does not parse is ignored rather than guessed at.

use base64::Engine as _;
use serde::Serialize;

/// Days left at or under which an expiry is a warning.
pub const WARNING_DAYS: i64 = 90;
/// Days left at or under which an expiry is critical.
pub const CRITICAL_DAYS: i64 = 30;

/// How urgent an expiry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// More than 90 days left.
    Ok,
    /// 90 days or less.
    Warning,
    /// 30 days or less.
    Critical,
    /// Already expired.
    Expired,
}

impl Severity {
    /// The severity of an expiry `days_left` days away (negative: expired).
    pub fn of(days_left: i64) -> Severity {
        if days_left < 0 {
            Severity::Expired
        } else if days_left <= CRITICAL_DAYS {
            Severity::Critical
        } else if days_left <= WARNING_DAYS {
            Severity::Warning
        } else {
            Severity::Ok
        }
    }

    /// `ok`, `warning`, `critical`, `expired`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Ok => "ok",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
            Severity::Expired => "expired",
        }
    }
}

/// The earliest certificate expiry of a database.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Expiry {
    /// The Secret holding the certificate that expires first.
    pub secret: String,
    /// Its `notAfter`, RFC 3339.
    pub not_after: String,
    /// Whole days left (negative once expired).
    pub days_left: i64,
    /// How urgent.
    pub severity: Severity,
}

impl Expiry {
    /// The expiry of `not_after` (from `secret`) seen at `now`.
    pub fn at(secret: &str, not_after: jiff::Timestamp, now: jiff::Timestamp) -> Expiry {
        let days_left = (not_after.as_second() - now.as_second()).div_euclid(86_400);
        Expiry {
            secret: secret.to_string(),
            not_after: not_after.to_string(),
            days_left,
            severity: Severity::of(days_left),
        }
    }

    /// `2026-12-01 (25d, critical)`, for tables.
    pub fn cell(&self) -> String {
        let date = self.not_after.get(..10).unwrap_or(&self.not_after);
        format!("{date} ({}d, {})", self.days_left, self.severity.as_str())
    }
}

/// The earliest `notAfter` of the certificates in a PEM bundle (`tls.crt`, `ca.crt`).
pub fn earliest_not_after(pem: &str) -> Option<jiff::Timestamp> {
    pem_certificates(pem)
        .filter_map(|der| not_after(&der))
        .min()
}

/// The DER of each `CERTIFICATE` block of a PEM text.
fn pem_certificates(pem: &str) -> impl Iterator<Item = Vec<u8>> + '_ {
    pem.split("-----BEGIN CERTIFICATE-----")
        .skip(1)
        .filter_map(|block| {
            let body = block.split("-----END CERTIFICATE-----").next()?;
            let b64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
            base64::engine::general_purpose::STANDARD.decode(b64).ok()
        })
}

/// One DER element: (tag, contents, what follows).
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

const SEQUENCE: u8 = 0x30;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;
/// `[0] EXPLICIT Version`, present in v2 and v3 certificates.
const VERSION_TAG: u8 = 0xa0;

/// The `notAfter` of one DER certificate (RFC 5280 4.1: Certificate -> tbsCertificate ->
/// version?, serialNumber, signature, issuer, validity { notBefore, notAfter }).
pub fn not_after(der: &[u8]) -> Option<jiff::Timestamp> {
    let (SEQUENCE, cert, _) = tlv(der)? else {
        return None;
    };
    let (SEQUENCE, tbs, _) = tlv(cert)? else {
        return None;
    };
    let mut rest = tbs;
    let (tag, _, after) = tlv(rest)?;
    if tag == VERSION_TAG {
        rest = after;
    }
    // serialNumber, signature, issuer
    for _ in 0..3 {
        rest = tlv(rest)?.2;
    }
    let (SEQUENCE, validity, _) = tlv(rest)? else {
        return None;
    };
    let (_, _, after_not_before) = tlv(validity)?;
    let (tag, time, _) = tlv(after_not_before)?;
    parse_time(tag, std::str::from_utf8(time).ok()?)
}

/// UTCTime `YYMMDDHHMMSSZ` (years 1950-2049) or GeneralizedTime `YYYYMMDDHHMMSSZ`.
fn parse_time(tag: u8, s: &str) -> Option<jiff::Timestamp> {
    let digits = s.strip_suffix('Z')?;
    // NB: before any slicing: a multi-byte character would put a slice off a char boundary.
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let full = match (tag, digits.len()) {
        (UTC_TIME, 12) => {
            let yy: u32 = digits[..2].parse().ok()?;
            let century = if yy >= 50 { "19" } else { "20" };
            format!("{century}{digits}")
        }
        (GENERALIZED_TIME, 14) => digits.to_string(),
        _ => return None,
    };
    format!(
        "{}-{}-{}T{}:{}:{}Z",
        &full[..4],
        &full[4..6],
        &full[6..8],
        &full[8..10],
        &full[10..12],
        &full[12..14]
    )
    .parse()
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// openssl req -x509 -days 3650 (UTCTime notAfter).
    const LEAF: &str = "-----BEGIN CERTIFICATE-----
MIIBjDCCATGgAwIBAgIUYXXTbgIWbnAGWTZCMcvcCZA3a6UwCgYIKoZIzj0EAwIw
GzEZMBcGA1UEAwwQcGctZGVtby5kZW1vLnN2YzAeFw0yNjExMjIwMjM3MThaFw0z
NjExMTkwMjM3MThaMBsxGTAXBgNVBAMMEHBnLWRlbW8uZGVtby5zdmMwWTATBgcq
hkjOPQIBBggqhkjOPQMBBwNCAAR+N1FXlOsHMDomKHumU7DbOYo6qPaPDJLAXSH+
+YGsutGpbTX3NaISjgtpDR+2cmXO8+VMfW38RopS3etph8yCo1MwUTAdBgNVHQ4E
FgQUUuW0TYr9ynlHSRuMrD00mMxlV5gwHwYDVR0jBBgwFoAUUuW0TYr9ynlHSRuM
rD00mMxlV5gwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNJADBGAiEA39aL
mx5nh55W2s1Lp3zg5YYnAh0VuqJvLmf/8c2lOsoCIQDHNCkW5x88sRyr7rsfzVdc
1n5NFl+a21qr3vnD635c9A==
-----END CERTIFICATE-----
";

    /// openssl req -x509 -days 40000 (GeneralizedTime notAfter, after 2049).
    const CA: &str = "-----BEGIN CERTIFICATE-----
MIIBcjCCARegAwIBAgIUQjSYua2AxyVA4DcoxEZx24P8pCwwCgYIKoZIzj0EAwIw
DTELMAkGA1UEAwwCY2EwIBcNMjYxMTIyMDIzNzE4WhgPMjEzNjA1MjkwMjM3MTha
MA0xCzAJBgNVBAMMAmNhMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAExwtgIAvS
mQuEp9tjg87kieHnSWdFPXHOj8k0pejofPmvUBmWw593g0X3V0rQRHap8CWbyTCz
LOjtTdCHwlhWEaNTMFEwHQYDVR0OBBYEFKl972NosaUA6o0dzZtHTjh0D8STMB8G
A1UdIwQYMBaAFKl972NosaUA6o0dzZtHTjh0D8STMA8GA1UdEwEB/wQFMAMBAf8w
CgYIKoZIzj0EAwIDSQAwRgIhANLkQjubQEgW4xUwvOBJaHGGtYTHOlyVxW+ywBBe
gys9AiEAqArfLxKY/cS6W4x5CPkhtbo0PJnnILFdPM1IgOVUsoQ=
-----END CERTIFICATE-----
";

    fn ts(s: &str) -> jiff::Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn not_after_is_read_from_utc_and_generalized_times() {
        assert_eq!(
            earliest_not_after(LEAF),
            Some(ts("2036-11-19T02:37:18Z")),
            "openssl x509 -enddate: Nov 19 02:37:18 2036 GMT"
        );
        assert_eq!(earliest_not_after(CA), Some(ts("2136-05-29T02:37:18Z")));
    }

    #[test]
    fn a_bundle_expires_with_its_earliest_certificate() {
        let bundle = format!("{CA}{LEAF}");
        assert_eq!(
            earliest_not_after(&bundle),
            Some(ts("2036-11-19T02:37:18Z"))
        );
    }

    #[test]
    fn garbage_is_ignored_not_guessed() {
        assert_eq!(earliest_not_after("not a certificate"), None);
        assert_eq!(
            earliest_not_after("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"),
            None
        );
        assert_eq!(
            not_after(&[0x30, 0x82, 0xff]),
            None,
            "a length past the end"
        );
    }

    #[test]
    fn ninety_days_warn_thirty_are_critical_as_azure_stack_alerts() {
        assert_eq!(Severity::of(91), Severity::Ok);
        assert_eq!(Severity::of(90), Severity::Warning);
        assert_eq!(Severity::of(31), Severity::Warning);
        assert_eq!(Severity::of(30), Severity::Critical);
        assert_eq!(Severity::of(0), Severity::Critical);
        assert_eq!(Severity::of(-1), Severity::Expired);
    }

    #[test]
    fn an_expiry_counts_whole_days_and_prints_compactly() {
        let e = Expiry::at(
            "pg-tls",
            ts("2026-12-17T12:00:00Z"),
            ts("2026-11-22T00:00:00Z"),
        );
        assert_eq!(e.days_left, 25);
        assert_eq!(e.severity, Severity::Critical);
        assert_eq!(e.cell(), "2026-12-17 (25d, critical)");
        let gone = Expiry::at("x", ts("2026-11-21T00:00:00Z"), ts("2026-11-22T00:00:00Z"));
        assert_eq!(gone.days_left, -1);
        assert_eq!(gone.severity, Severity::Expired);
    }

    #[test]
    fn a_time_with_a_multi_byte_character_is_refused_not_a_panic() {
        // Twelve bytes before the Z, as a UTCTime needs, but "é" spans bytes 1 and 2.
        assert_eq!(parse_time(UTC_TIME, "2\u{e9}010100000Z"), None);
        assert_eq!(parse_time(GENERALIZED_TIME, "20\u{e9}0101000000Z"), None);
        assert_eq!(parse_time(UTC_TIME, "\u{661}\u{662}0101000000Z"), None);
    }

    /// xorshift64*: a fixed sequence, so a failure reproduces.
    struct Bytes(u64);

    impl Bytes {
        fn next(&mut self) -> u8 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
        }
    }

    #[test]
    fn random_bytes_as_a_certificate_never_panic() {
        let der: Vec<u8> = pem_certificates(LEAF).next().expect("the test certificate");
        let mut rng = Bytes(0x9e37_79b9_7f4a_7c15);
        for round in 0..20_000 {
            // Half pure noise of any length, half the real certificate with a few bytes
            // changed (which reaches the time fields), some of them UTF-8 lead bytes.
            let input: Vec<u8> = if round % 2 == 0 {
                let len = usize::from(rng.next()) * 2;
                (0..len).map(|_| rng.next()).collect()
            } else {
                let mut d = der.clone();
                for _ in 0..=(rng.next() % 4) {
                    let at = usize::from(rng.next()) * d.len() / 256;
                    d[at] = match rng.next() % 3 {
                        0 => 0xc3,
                        1 => 0xa9,
                        _ => rng.next(),
                    };
                }
                d
            };
            let _ = not_after(&input);
            let text = String::from_utf8_lossy(&input);
            let _ = earliest_not_after(&format!(
                "-----BEGIN CERTIFICATE-----\n{text}\n-----END CERTIFICATE-----"
            ));
        }
    }

    #[test]
    fn a_multi_byte_character_inside_a_real_certificate_time_is_no_panic() {
        let mut der: Vec<u8> = pem_certificates(LEAF).next().expect("the test certificate");
        // The notAfter UTCTime is the second 13-byte run ending in Z after tag 0x17.
        let ends: Vec<usize> = der
            .windows(2)
            .enumerate()
            .filter(|(_, w)| w[0] == UTC_TIME && w[1] == 13)
            .map(|(i, _)| i + 2)
            .collect();
        let at = *ends.get(1).expect("notBefore and notAfter");
        der[at + 1] = 0xc3;
        der[at + 2] = 0xa9;
        assert_eq!(not_after(&der), None);
    }
}
