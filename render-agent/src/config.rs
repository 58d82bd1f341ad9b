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

pub use renderfleet_core::edge::ConfigError;
use renderfleet_core::edge::{Settings, env_var};

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(env_var)
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Settings::new(&get);
        let names = env.names()?;
        let cores = std::thread::available_parallelism()
            .map(|n| n.get() as u32)
            .unwrap_or(1);
        let slots: u32 = env.parse_or("RENDERFLEET_SLOTS", (cores / 4).max(1))?;
        if slots == 0 || slots > 64 {
            return Err(ConfigError::new(
                "RENDERFLEET_SLOTS",
                format!("must be 1..=64, got {slots}"),
            ));
        }
        let visibility = env.secs_or(
            "RENDERFLEET_VISIBILITY_SECS",
            renderfleet_core::message::VISIBILITY_TIMEOUT_SECS,
        )?;
        if visibility < Duration::from_secs(6) {
            return Err(ConfigError::new(
                "RENDERFLEET_VISIBILITY_SECS",
                "must be at least 6",
            ));
        }
        let instance_id = env.text("RENDERFLEET_INSTANCE_ID");
        Ok(Self {
            names,
            watch_imds: env.parse_or("RENDERFLEET_WATCH_IMDS", instance_id.is_none())?,
            instance_id,
            slots,
            work_dir: path(&env, "RENDERFLEET_WORK_DIR", "/var/lib/renderfleet/work")?,
            engine: engine(&env)?,
            ffmpeg: path(&env, "RENDERFLEET_FFMPEG", "ffmpeg")?,
            ffprobe: path(&env, "RENDERFLEET_FFPROBE", "ffprobe")?,
            font: path(
                &env,
                "RENDERFLEET_FONT",
                "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
            )?,
            heartbeat: env.secs_or("RENDERFLEET_HEARTBEAT_SECS", 10)?,
            status_spread: env.secs_or("RENDERFLEET_STATUS_SPREAD_SECS", 300)?,
            progress_every: env.secs_or("RENDERFLEET_PROGRESS_SECS", 2)?,
            visibility,
            poll_wait: env.secs_or("RENDERFLEET_POLL_WAIT_SECS", 5)?,
            retry_backoff: env.secs_or("RENDERFLEET_RETRY_BACKOFF_SECS", 5)?,
            termination_hook: env.text("RENDERFLEET_TERMINATION_HOOK"),
            launch_hook: env.text("RENDERFLEET_LAUNCH_HOOK"),
            drain_grace: env.secs_or("RENDERFLEET_DRAIN_GRACE_SECS", 110)?,
            max_output_bytes: env.parse_or("RENDERFLEET_MAX_OUTPUT_BYTES", 4 << 30)?,
            max_asset_bytes: env.parse_or("RENDERFLEET_MAX_ASSET_BYTES", 2 << 30)?,
            timeout_base: env.secs_or("RENDERFLEET_TIMEOUT_BASE_SECS", 60)?,
            timeout_per_unit: env.secs_or("RENDERFLEET_TIMEOUT_PER_UNIT_SECS", 10)?,
            min_free_disk: env.parse_or("RENDERFLEET_MIN_FREE_DISK_BYTES", 1 << 30)?,
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

/// A path setting, made absolute once: the engine runs inside each job's work directory, where a
/// relative path would name another file. A bare program name stays as it is, for `PATH` lookup.
fn path(env: &Settings<'_>, var: &'static str, default: &str) -> Result<PathBuf, ConfigError> {
    let p = PathBuf::from(env.text(var).as_deref().unwrap_or(default));
    if p.components().count() == 1 && !p.is_absolute() && !default.starts_with('/') {
        return Ok(p);
    }
    std::path::absolute(&p)
        .map_err(|e| ConfigError::new(var, format!("cannot make {} absolute: {e}", p.display())))
}

/// `RENDERFLEET_ENGINE` and, for an external engine, `RENDERFLEET_ENGINE_COMMAND`.
fn engine(env: &Settings<'_>) -> Result<EngineKind, ConfigError> {
    match env.text("RENDERFLEET_ENGINE").as_deref() {
        None | Some("ffmpeg") => Ok(EngineKind::Ffmpeg),
        Some("external") => match env.text("RENDERFLEET_ENGINE_COMMAND") {
            Some(_) => Ok(EngineKind::External {
                command: path(env, "RENDERFLEET_ENGINE_COMMAND", "")?,
            }),
            None => Err(ConfigError::new(
                "RENDERFLEET_ENGINE_COMMAND",
                "required with RENDERFLEET_ENGINE=external",
            )),
        },
        Some(other) => Err(ConfigError::new(
            "RENDERFLEET_ENGINE",
            format!("unknown engine {other:?}: use ffmpeg or external"),
        )),
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
