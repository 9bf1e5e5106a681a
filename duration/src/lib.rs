//! Durations as kubectl reads and prints them, in one place for the plugin and the sandbox:
//! Go durations (`90s`, `5m`, `1h30m`, `500ms`) as kubectl and KubeDB write them, ages given
//! in days or weeks (`90d`, `2w`), and kubectl's AGE format ([`human`]).

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

/// `--older-than`: a Go duration (`36h`) or whole days or weeks (`90d`, `2w`), more than 0.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OlderThan {
    text: String,
    value: Duration,
}

impl OlderThan {
    /// The threshold.
    pub fn get(&self) -> Duration {
        self.value
    }
}

impl fmt::Display for OlderThan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for OlderThan {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = s.trim().to_string();
        let days = |n: &str, per: u64| {
            n.parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .and_then(|n| n.checked_mul(per * 86_400))
                .map(Duration::from_secs)
        };
        let value = if let Some(n) = text.strip_suffix('d') {
            days(n, 1)
        } else if let Some(n) = text.strip_suffix('w') {
            days(n, 7)
        } else {
            text.parse::<GoDuration>()
                .ok()
                .map(|d| d.get())
                .filter(|d| !d.is_zero())
        };
        // NB: ages are counted in i64 seconds (as Kubernetes timestamps are); a threshold
        // beyond that (`200000000000000d`) would wrap into a negative one that makes every
        // credential overdue, so it is refused.
        value
            .filter(|v| i64::try_from(v.as_secs()).is_ok())
            .map(|value| OlderThan {
                text: text.clone(),
                value,
            })
            .ok_or_else(|| {
                format!("invalid age {s:?}: use days, weeks or a duration, e.g. 90d, 2w, 36h")
            })
    }
}

/// Kubernetes' `HumanDuration`, as kubectl's AGE column prints it: `45s`, `3m12s`, `65m`,
/// `5h`, `3d4h`, `90d`, `2y`. One extension: under one second it prints milliseconds
/// (`506ms`), where kubectl would say `0s`; pass whole seconds to get kubectl's exact text.
pub fn human(d: Duration) -> String {
    if d < Duration::from_secs(1) && !d.is_zero() {
        return format!("{}ms", d.as_millis());
    }
    human_secs(i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// [`human`] of a number of seconds, as ages are computed; a negative age (clock skew)
/// prints as `0s`.
pub fn human_secs(secs: i64) -> String {
    let s = secs.max(0);
    let (m, h, d) = (s / 60, s / 3600, s / 86_400);
    if s < 120 {
        format!("{s}s")
    } else if m < 10 {
        match s % 60 {
            0 => format!("{m}m"),
            r => format!("{m}m{r}s"),
        }
    } else if m < 180 {
        format!("{m}m")
    } else if h < 8 {
        match m % 60 {
            0 => format!("{h}h"),
            r => format!("{h}h{r}m"),
        }
    } else if h < 48 {
        format!("{h}h")
    } else if h < 24 * 8 {
        match h % 24 {
            0 => format!("{d}d"),
            r => format!("{d}d{r}h"),
        }
    } else if h < 24 * 365 * 2 {
        format!("{d}d")
    } else {
        format!("{}y", d / 365)
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
    fn ages_print_like_kubectl_including_days_and_years() {
        assert_eq!(human(Duration::from_secs(45)), "45s");
        assert_eq!(human(Duration::from_secs(150)), "2m30s");
        assert_eq!(human(Duration::from_secs(192)), "3m12s");
        // kubectl prints minutes up to three hours: a 65-minute rotation is 65m, not 1h5m.
        assert_eq!(human(Duration::from_secs(3900)), "65m");
        assert_eq!(human(Duration::from_secs(5 * 3600 + 60)), "5h1m");
        assert_eq!(human_secs(5 * 3600), "5h");
        assert_eq!(human_secs(3 * 86_400), "3d");
        assert_eq!(human_secs(3 * 86_400 + 4 * 3600), "3d4h");
        assert_eq!(human_secs(90 * 86_400), "90d");
        assert_eq!(human_secs(800 * 86_400), "2y");
        assert_eq!(human_secs(-5), "0s");
        assert_eq!(human(Duration::ZERO), "0s");
    }

    #[test]
    fn under_a_second_prints_milliseconds() {
        assert_eq!(human(Duration::from_millis(120)), "120ms");
        assert_eq!(human(Duration::from_millis(1500)), "1s");
    }

    #[test]
    fn older_than_takes_days_weeks_and_go_durations() {
        let d = |s: &str| s.parse::<OlderThan>().unwrap().get().as_secs();
        assert_eq!(d("90d"), 90 * 86_400);
        assert_eq!(d("2w"), 14 * 86_400);
        assert_eq!(d("36h"), 36 * 3600);
        assert_eq!("90d".parse::<OlderThan>().unwrap().to_string(), "90d");
        for bad in ["", "0d", "d", "-3d", "soon", "0"] {
            assert!(bad.parse::<OlderThan>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn an_age_too_large_to_count_is_refused_not_wrapped() {
        assert!("200000000000000d".parse::<OlderThan>().is_err());
        assert!("30000000000000w".parse::<OlderThan>().is_err());
    }
}
