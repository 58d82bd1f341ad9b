//! renderctl: the command line of renderfleet.
//!
//! Layout: [`client`] talks to the REST API, [`settings`] finds the API and the local stack,
//! [`local`] runs the local stack (emulator, job server, scaler, fleet supervisor), [`demo`] drives
//! a burst of renders through it. `main.rs` only parses arguments and calls these.

pub mod client;
pub mod demo;
pub mod local;
pub mod settings;

/// Makes a path given on the command line absolute against the current directory, at parse time:
/// every process the local stack starts gets a path that means the same wherever it runs (an
/// agent runs ffmpeg inside its work directory, where a relative path would point elsewhere).
pub fn absolute_path(s: &str) -> Result<std::path::PathBuf, String> {
    if s.trim().is_empty() {
        return Err("an empty path".into());
    }
    std::path::absolute(s).map_err(|e| format!("cannot make {s:?} absolute: {e}"))
}

/// Parses `2s`, `500ms`, `1.5m`, `1h` or a bare number of seconds.
pub use renderfleet_core::edge::parse_duration;

#[cfg(test)]
mod tests {
    use super::{absolute_path, parse_duration};
    use std::time::Duration;

    #[test]
    fn paths_are_made_absolute_at_parse_time() {
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(
            absolute_path(".renderfleet").unwrap(),
            cwd.join(".renderfleet")
        );
        assert_eq!(
            absolute_path("/tmp/x").unwrap(),
            std::path::PathBuf::from("/tmp/x")
        );
        assert!(absolute_path("").is_err());
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5d").is_err());
    }
}
