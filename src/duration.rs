//! Go-style durations (`90s`, `5m`, `1h30m`, `500ms`), as kubectl and KubeDB write them.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A duration given on the command line, kept with the text the user wrote so it can be
/// passed to the server unchanged (KubeDB's `spec.timeout` is a Go `metav1.Duration`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoDuration {
    text: String,
    value: Duration,
}

impl GoDuration {
    /// The parsed value.
    pub fn get(&self) -> Duration {
        self.value
    }

    /// The text as given, e.g. `5m`.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether this is zero (kubectl's "no timeout").
    pub fn is_zero(&self) -> bool {
        self.value.is_zero()
    }
}

impl Default for GoDuration {
    /// Zero, written `0`.
    fn default() -> Self {
        GoDuration {
            text: "0".into(),
            value: Duration::ZERO,
        }
    }
}

impl fmt::Display for GoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for GoDuration {
    type Err = String;

    /// Parses `0`, a bare number of seconds (as kubectl's `--request-timeout` accepts), or a
    /// sequence of `<number><unit>` with units `ms`, `s`, `m`, `h`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad =
            || format!("invalid duration {s:?}: use a number with a unit, e.g. 30s, 5m, 1h30m");
        let text = s.trim();
        if text.is_empty() {
            return Err(bad());
        }
        if let Ok(secs) = text.parse::<u64>() {
            return Ok(GoDuration {
                text: format!("{secs}s"),
                value: Duration::from_secs(secs),
            });
        }
        let mut total = Duration::ZERO;
        let mut rest = text;
        while !rest.is_empty() {
            let digits = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .ok_or_else(bad)?;
            if digits == 0 {
                return Err(bad());
            }
            let number: f64 = rest[..digits].parse().map_err(|_| bad())?;
            rest = &rest[digits..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(rest.len());
            let seconds = match &rest[..unit_len] {
                "ms" => number / 1000.0,
                "s" => number,
                "m" => number * 60.0,
                "h" => number * 3600.0,
                _ => return Err(bad()),
            };
            rest = &rest[unit_len..];
            total += Duration::try_from_secs_f64(seconds).map_err(|_| bad())?;
        }
        Ok(GoDuration {
            text: text.to_string(),
            value: total,
        })
    }
}

/// Formats a duration the way kubectl prints ages: `45s`, `3m12s`, `1h5m`.
pub fn human(d: Duration) -> String {
    let secs = d.as_secs();
    if secs < 60 {
        if secs == 0 && d.as_millis() > 0 {
            return format!("{}ms", d.as_millis());
        }
        format!("{secs}s")
    } else if secs < 3600 {
        let (m, s) = (secs / 60, secs % 60);
        if s == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{s}s")
        }
    } else {
        let (h, m) = (secs / 3600, (secs % 3600) / 60);
        if m == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{m}m")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Duration {
        s.parse::<GoDuration>().unwrap().get()
    }

    #[test]
    fn go_durations_parse_with_units_and_compounds() {
        assert_eq!(d("30s"), Duration::from_secs(30));
        assert_eq!(d("5m"), Duration::from_secs(300));
        assert_eq!(d("1h30m"), Duration::from_secs(5400));
        assert_eq!(d("500ms"), Duration::from_millis(500));
        assert_eq!(d("1.5s"), Duration::from_millis(1500));
        assert_eq!(d("0"), Duration::ZERO);
        assert_eq!(d("20"), Duration::from_secs(20));
    }

    #[test]
    fn the_text_given_is_kept_for_the_server() {
        assert_eq!("1h30m".parse::<GoDuration>().unwrap().as_str(), "1h30m");
        assert_eq!("20".parse::<GoDuration>().unwrap().as_str(), "20s");
    }

    #[test]
    fn nonsense_durations_are_refused() {
        for bad in ["", "m", "5 minutes", "5d", "-1s", "1h-5m"] {
            assert!(bad.parse::<GoDuration>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ages_print_like_kubectl() {
        assert_eq!(human(Duration::from_secs(45)), "45s");
        assert_eq!(human(Duration::from_secs(192)), "3m12s");
        assert_eq!(human(Duration::from_secs(3900)), "1h5m");
        assert_eq!(human(Duration::from_millis(120)), "120ms");
    }
}
