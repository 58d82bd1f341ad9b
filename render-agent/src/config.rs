//! The agent's settings, parsed once from the environment. The launch template's user data
//! writes the same variables to `/etc/renderfleet/agent.env`.

use std::path::PathBuf;
use std::time::Duration;

use renderfleet_core::names::ResourceNames;

/// Which engine renders.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EngineKind {
    /// ffmpeg, planned from the spec.
    Ffmpeg,
    /// An external renderer: `command SPEC_JSON OUTPUT` (see docs/ENGINE.md).
    External { command: PathBuf },
}

#[derive(Clone, Debug)]
pub struct Config {
    /// `RENDERFLEET_ENV` (required) and `RENDERFLEET_BUCKET` (the media bucket; default
    /// `renderfleet-{env}-media`).
    pub names: ResourceNames,
    /// `RENDERFLEET_INSTANCE_ID`: this worker's EC2 instance id. Default: asked of the instance
    /// metadata service (IMDSv2).
    pub instance_id: Option<String>,
    /// `RENDERFLEET_SLOTS`: jobs rendered at once. Default: a quarter of the cores, at least 1
    /// (ffmpeg uses several cores per job).
    pub slots: u32,
    /// `RENDERFLEET_WORK_DIR`: where jobs' private work directories go. Default
    /// `/var/lib/renderfleet/work`.
    pub work_dir: PathBuf,
    /// `RENDERFLEET_ENGINE`: `ffmpeg` (default) or `external`, with `RENDERFLEET_ENGINE_COMMAND`.
    pub engine: EngineKind,
    /// `RENDERFLEET_FFMPEG` / `RENDERFLEET_FFPROBE`: the binaries. Default from `PATH`.
    pub ffmpeg: PathBuf,
    pub ffprobe: PathBuf,
    /// `RENDERFLEET_FONT`: the font text is drawn with. Default DejaVu Sans.
    pub font: PathBuf,
    /// `RENDERFLEET_HEARTBEAT_SECS`: how often the agent writes its liveness heartbeat (one
    /// DynamoDB item). Default 10.
    pub heartbeat: Duration,
    /// `RENDERFLEET_STATUS_SPREAD_SECS`: the first `ready` health state goes to SSM after a random
    /// delay of up to this, so a fleet booting together stays under PutParameter's quota (a few
    /// writes a second per account). Changes after that are written at once. Default 300.
    pub status_spread: Duration,
    /// `RENDERFLEET_PROGRESS_SECS`: how often a running job's progress and lease are written (and
    /// a cancel noticed). Default 2.
    pub progress_every: Duration,
    /// `RENDERFLEET_VISIBILITY_SECS`: the queue's visibility timeout and the job lease; extended
    /// every third of it while rendering. Default 60 (the queue's).
    pub visibility: Duration,
    /// `RENDERFLEET_POLL_WAIT_SECS`: long-poll wait. Default 5 (a SIGTERM is noticed within it).
    pub poll_wait: Duration,
    /// `RENDERFLEET_RETRY_BACKOFF_SECS`: first delay before a failed job is retried; doubles per
    /// delivery, at most 60 s. Default 5.
    pub retry_backoff: Duration,
    /// `RENDERFLEET_TERMINATION_HOOK`: the group's termination lifecycle hook; when set, the agent
    /// completes it after draining. Default none.
    pub termination_hook: Option<String>,
    /// `RENDERFLEET_LAUNCH_HOOK`: the group's launch lifecycle hook; when set, the agent completes
    /// it (CONTINUE) once its self-check passes, so the instance enters service only when it can
    /// render. Default none.
    pub launch_hook: Option<String>,
    /// `RENDERFLEET_WATCH_IMDS`: poll the instance metadata for a scale-in or spot interruption
    /// and drain on it. Default true unless `RENDERFLEET_INSTANCE_ID` is given (the local stack).
    pub watch_imds: bool,
    /// `RENDERFLEET_DRAIN_GRACE_SECS`: on SIGTERM, how long running jobs may finish before they are
    /// handed back to the queue. Default 110 (inside a two-minute spot notice).
    pub drain_grace: Duration,
    /// `RENDERFLEET_MAX_OUTPUT_BYTES`: cap on a rendered file. Default 4 GiB.
    pub max_output_bytes: u64,
    /// `RENDERFLEET_MAX_ASSET_BYTES`: cap on a downloaded asset. Default 2 GiB.
    pub max_asset_bytes: u64,
    /// `RENDERFLEET_TIMEOUT_BASE_SECS` and `RENDERFLEET_TIMEOUT_PER_UNIT_SECS`: the engine's
    /// wall-clock limit is base + per-unit x the job's work units. Defaults 60 and 10.
    pub timeout_base: Duration,
    pub timeout_per_unit: Duration,
    /// `RENDERFLEET_MIN_FREE_DISK_BYTES`: below this the agent reports unhealthy and takes no
    /// work. Default 1 GiB.
    pub min_free_disk: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("{var}: {message}")]
pub struct ConfigError {
    pub var: &'static str,
    pub message: String,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        fn parse<T: std::str::FromStr>(
            get: &impl Fn(&str) -> Option<String>,
            var: &'static str,
            default: T,
        ) -> Result<T, ConfigError>
        where
            T::Err: std::fmt::Display,
        {
            match get(var).filter(|v| !v.trim().is_empty()) {
                None => Ok(default),
                Some(v) => v.trim().parse().map_err(|e| ConfigError {
                    var,
                    message: format!("cannot parse {v:?}: {e}"),
                }),
            }
        }
        let secs = |var: &'static str, default: u64| -> Result<Duration, ConfigError> {
            Ok(Duration::from_secs(parse(&get, var, default)?))
        };
        let names = ResourceNames::from_lookup(&get)
            .map_err(|(var, message)| ConfigError { var, message })?;
        let cores = std::thread::available_parallelism()
            .map(|n| n.get() as u32)
            .unwrap_or(1);
        let slots: u32 = parse(&get, "RENDERFLEET_SLOTS", (cores / 4).max(1))?;
        if slots == 0 || slots > 64 {
            return Err(ConfigError {
                var: "RENDERFLEET_SLOTS",
                message: format!("must be 1..=64, got {slots}"),
            });
        }
        // Paths are made absolute here, once: the engine runs inside each job's work directory,
        // where a relative path would name another file.
        let path = |var: &'static str, default: &str| -> Result<PathBuf, ConfigError> {
            let raw = get(var).filter(|v| !v.trim().is_empty());
            let p = PathBuf::from(raw.as_deref().unwrap_or(default));
            // A bare program name is looked up in PATH, not in the current directory.
            if p.components().count() == 1 && !p.is_absolute() && !default.starts_with('/') {
                return Ok(p);
            }
            std::path::absolute(&p).map_err(|e| ConfigError {
                var,
                message: format!("cannot make {} absolute: {e}", p.display()),
            })
        };
        let engine = match get("RENDERFLEET_ENGINE").as_deref().map(str::trim) {
            None | Some("") | Some("ffmpeg") => EngineKind::Ffmpeg,
            Some("external") => EngineKind::External {
                command: match get("RENDERFLEET_ENGINE_COMMAND").filter(|v| !v.trim().is_empty()) {
                    Some(_) => path("RENDERFLEET_ENGINE_COMMAND", "")?,
                    None => {
                        return Err(ConfigError {
                            var: "RENDERFLEET_ENGINE_COMMAND",
                            message: "required with RENDERFLEET_ENGINE=external".into(),
                        });
                    }
                },
            },
            Some(other) => {
                return Err(ConfigError {
                    var: "RENDERFLEET_ENGINE",
                    message: format!("unknown engine {other:?}: use ffmpeg or external"),
                });
            }
        };
        let visibility = secs(
            "RENDERFLEET_VISIBILITY_SECS",
            renderfleet_core::message::VISIBILITY_TIMEOUT_SECS,
        )?;
        if visibility < Duration::from_secs(6) {
            return Err(ConfigError {
                var: "RENDERFLEET_VISIBILITY_SECS",
                message: "must be at least 6".into(),
            });
        }
        Ok(Self {
            names,
            instance_id: get("RENDERFLEET_INSTANCE_ID").filter(|v| !v.is_empty()),
            slots,
            work_dir: path("RENDERFLEET_WORK_DIR", "/var/lib/renderfleet/work")?,
            engine,
            ffmpeg: path("RENDERFLEET_FFMPEG", "ffmpeg")?,
            ffprobe: path("RENDERFLEET_FFPROBE", "ffprobe")?,
            font: path(
                "RENDERFLEET_FONT",
                "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
            )?,
            heartbeat: secs("RENDERFLEET_HEARTBEAT_SECS", 10)?,
            status_spread: secs("RENDERFLEET_STATUS_SPREAD_SECS", 300)?,
            progress_every: secs("RENDERFLEET_PROGRESS_SECS", 2)?,
            visibility,
            poll_wait: secs("RENDERFLEET_POLL_WAIT_SECS", 5)?,
            retry_backoff: secs("RENDERFLEET_RETRY_BACKOFF_SECS", 5)?,
            termination_hook: get("RENDERFLEET_TERMINATION_HOOK").filter(|v| !v.trim().is_empty()),
            launch_hook: get("RENDERFLEET_LAUNCH_HOOK").filter(|v| !v.trim().is_empty()),
            watch_imds: parse(
                &get,
                "RENDERFLEET_WATCH_IMDS",
                get("RENDERFLEET_INSTANCE_ID").is_none(),
            )?,
            drain_grace: secs("RENDERFLEET_DRAIN_GRACE_SECS", 110)?,
            max_output_bytes: parse(&get, "RENDERFLEET_MAX_OUTPUT_BYTES", 4 << 30)?,
            max_asset_bytes: parse(&get, "RENDERFLEET_MAX_ASSET_BYTES", 2 << 30)?,
            timeout_base: secs("RENDERFLEET_TIMEOUT_BASE_SECS", 60)?,
            timeout_per_unit: secs("RENDERFLEET_TIMEOUT_PER_UNIT_SECS", 10)?,
            min_free_disk: parse(&get, "RENDERFLEET_MIN_FREE_DISK_BYTES", 1 << 30)?,
        })
    }

    /// Settings for tests: environment `test`, a given work directory, fast timers.
    pub fn for_tests(work_dir: PathBuf) -> Self {
        let mut c = Self::from_lookup(|k| match k {
            "RENDERFLEET_ENV" => Some("test".into()),
            "RENDERFLEET_INSTANCE_ID" => Some("i-test".into()),
            "RENDERFLEET_SLOTS" => Some("1".into()),
            _ => None,
        })
        .expect("valid");
        c.work_dir = work_dir;
        c.poll_wait = Duration::from_millis(200);
        c.status_spread = Duration::ZERO;
        c.min_free_disk = 0;
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| {
            vars.iter()
                .find(|(name, _)| name == k)
                .map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn relative_paths_become_absolute_and_program_names_stay_for_path_lookup() {
        let cwd = std::env::current_dir().unwrap();
        let c = config(&[
            ("RENDERFLEET_ENV", "dev"),
            ("RENDERFLEET_WORK_DIR", ".renderfleet/work/i-1"),
            ("RENDERFLEET_FONT", "fonts/a.ttf"),
            ("RENDERFLEET_FFPROBE", "./bin/ffprobe"),
        ])
        .unwrap();
        assert_eq!(c.work_dir, cwd.join(".renderfleet/work/i-1"));
        assert!(c.work_dir.is_absolute());
        assert_eq!(c.font, cwd.join("fonts/a.ttf"));
        assert_eq!(c.ffprobe, cwd.join("bin/ffprobe"));
        assert_eq!(
            c.ffmpeg,
            PathBuf::from("ffmpeg"),
            "a bare name is found in PATH"
        );
        let bare_dir = config(&[("RENDERFLEET_ENV", "dev"), ("RENDERFLEET_WORK_DIR", "work")]);
        assert_eq!(bare_dir.unwrap().work_dir, cwd.join("work"));
    }

    #[test]
    fn an_external_engine_needs_its_command() {
        let e = config(&[
            ("RENDERFLEET_ENV", "dev"),
            ("RENDERFLEET_ENGINE", "external"),
        ]);
        assert_eq!(e.unwrap_err().var, "RENDERFLEET_ENGINE_COMMAND");
        let c = config(&[
            ("RENDERFLEET_ENV", "dev"),
            ("RENDERFLEET_ENGINE", "external"),
            ("RENDERFLEET_ENGINE_COMMAND", "engines/render.sh"),
        ])
        .unwrap();
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(
            c.engine,
            EngineKind::External {
                command: cwd.join("engines/render.sh")
            }
        );
    }
}
