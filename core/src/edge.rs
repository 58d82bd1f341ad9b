//! What every binary does at its edge, written once: read its settings from the environment
//! (with one error type that names the variable), set up logging, wait for the signal to stop,
//! and parse a duration given on a command line.

use std::str::FromStr;
use std::time::Duration;

/// A setting that is missing or malformed, named by its variable.
#[derive(Debug, thiserror::Error)]
#[error("{var}: {message}")]
pub struct ConfigError {
    pub var: &'static str,
    pub message: String,
}

impl ConfigError {
    pub fn new(var: &'static str, message: impl Into<String>) -> Self {
        Self {
            var,
            message: message.into(),
        }
    }
}

/// Settings read through a lookup: the process environment, or a map in tests. A variable set
/// to blanks counts as unset.
pub struct Settings<'a> {
    get: &'a dyn Fn(&str) -> Option<String>,
}

impl std::fmt::Debug for Settings<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Settings")
    }
}

/// The process environment as a lookup.
pub fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

impl<'a> Settings<'a> {
    pub fn new(get: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Self { get }
    }

    /// The variable's value, trimmed; `None` when unset or blank.
    pub fn text(&self, var: &str) -> Option<String> {
        (self.get)(var)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// The variable parsed, or `None` when unset.
    pub fn parse<T: FromStr>(&self, var: &'static str) -> Result<Option<T>, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        self.text(var)
            .map(|v| {
                v.parse()
                    .map_err(|e| ConfigError::new(var, format!("cannot parse {v:?}: {e}")))
            })
            .transpose()
    }

    /// The variable parsed, or `default` when unset.
    pub fn parse_or<T: FromStr>(&self, var: &'static str, default: T) -> Result<T, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        Ok(self.parse(var)?.unwrap_or(default))
    }

    /// A whole number of seconds, or `default` seconds when unset.
    pub fn secs_or(&self, var: &'static str, default: u64) -> Result<Duration, ConfigError> {
        Ok(Duration::from_secs(self.parse_or(var, default)?))
    }

    /// Seconds with a fraction (finite, not negative), or `default` seconds when unset.
    pub fn fractional_secs_or(
        &self,
        var: &'static str,
        default: f64,
    ) -> Result<Duration, ConfigError> {
        let v: f64 = self.parse_or(var, default)?;
        Duration::try_from_secs_f64(v)
            .map_err(|_| ConfigError::new(var, format!("must be a number of seconds, got {v}")))
    }

    /// The environment's resource names (`RENDERFLEET_ENV`, `RENDERFLEET_BUCKET`).
    pub fn names(&self) -> Result<crate::names::ResourceNames, ConfigError> {
        crate::names::ResourceNames::from_lookup(self.get)
            .map_err(|(var, message)| ConfigError { var, message })
    }
}

/// How a binary logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line, fields flattened, the current span included: what the loss
    /// audit and CloudWatch Logs read.
    Json,
    /// JSON without timestamps: under Lambda, CloudWatch Logs adds its own.
    JsonUntimed,
    /// Text for people, on stderr (the CLI).
    Text,
}

/// Installs the global subscriber, filtered by `RENDERFLEET_LOG` (default `default_level`).
pub fn init_tracing(format: LogFormat, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RENDERFLEET_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .init(),
        LogFormat::JsonUntimed => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .without_time()
            .init(),
        LogFormat::Text => builder.with_writer(std::io::stderr).init(),
    }
}

/// Waits for SIGTERM or an interrupt; says which.
pub async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = tokio::signal::ctrl_c() => "interrupt",
        },
        Err(e) => {
            tracing::warn!(error = %e, "no SIGTERM handler; stopping on an interrupt only");
            let _ = tokio::signal::ctrl_c().await;
            "interrupt"
        }
    }
}

/// A duration that does not parse.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("not a duration: {0:?} (try 2s or 500ms)")]
    NotANumber(String),
    #[error("unknown unit in {0:?}: use ms, s, m or h")]
    UnknownUnit(String),
}

/// Parses `2s`, `500ms`, `1.5m`, `1h` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let v: f64 = num
        .parse()
        .map_err(|_| DurationError::NotANumber(s.to_owned()))?;
    let secs = match unit {
        "ms" => v / 1000.0,
        "" | "s" => v,
        "m" => v * 60.0,
        "h" => v * 3600.0,
        _ => return Err(DurationError::UnknownUnit(s.to_owned())),
    };
    Duration::try_from_secs_f64(secs).map_err(|_| DurationError::NotANumber(s.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units_and_bare_seconds() {
        let ok = |s: &str| parse_duration(s).unwrap();
        assert_eq!(ok("2s"), Duration::from_secs(2));
        assert_eq!(ok("500ms"), Duration::from_millis(500));
        assert_eq!(ok("1.5m"), Duration::from_secs(90));
        assert_eq!(ok("1h"), Duration::from_secs(3600));
        assert_eq!(ok(" 3 "), Duration::from_secs(3));
        assert!(matches!(
            parse_duration("2d"),
            Err(DurationError::UnknownUnit(_))
        ));
        assert!(matches!(
            parse_duration("fast"),
            Err(DurationError::NotANumber(_))
        ));
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn settings_name_the_variable_and_treat_blanks_as_unset() {
        let get = |k: &str| match k {
            "A" => Some(" 7 ".to_owned()),
            "B" => Some("  ".to_owned()),
            "C" => Some("seven".to_owned()),
            "D" => Some("-2".to_owned()),
            _ => None,
        };
        let s = Settings::new(&get);
        assert_eq!(s.parse_or("A", 1u32).unwrap(), 7);
        assert_eq!(s.parse_or("B", 1u32).unwrap(), 1);
        assert_eq!(s.text("B"), None);
        let e = s.parse_or("C", 1u32).unwrap_err();
        assert_eq!(
            e.to_string(),
            "C: cannot parse \"seven\": invalid digit found in string"
        );
        assert!(s.fractional_secs_or("D", 1.0).is_err());
        assert_eq!(
            s.fractional_secs_or("A", 1.0).unwrap(),
            Duration::from_secs(7)
        );
    }
}
