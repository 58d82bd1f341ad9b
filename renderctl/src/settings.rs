//! Where renderctl finds its settings: the environment first, then the local stack's
//! `.renderfleet/local.env` (or `$RENDERFLEET_STATE_DIR/local.env`), which `renderctl dev up`
//! writes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// The local stack's state directory, absolute.
pub fn state_dir() -> PathBuf {
    let dir = std::env::var_os("RENDERFLEET_STATE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| ".renderfleet".into());
    std::path::absolute(&dir).unwrap_or(dir)
}

/// `KEY=value` lines, as written to `local.env`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EnvFile(pub BTreeMap<String, String>);

impl EnvFile {
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Ok(Self::parse(&text))
    }

    pub fn parse(text: &str) -> Self {
        let map = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .filter_map(|l| l.strip_prefix("export ").unwrap_or(l).split_once('='))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().trim_matches('\'').to_owned()))
            .collect();
        Self(map)
    }

    pub fn render(&self) -> String {
        let mut out = String::from(
            "# Written by `renderctl dev up`. Load with: set -a; . .renderfleet/local.env; set +a\n",
        );
        for (k, v) in &self.0 {
            out.push_str(&format!("{k}={v}\n"));
        }
        out
    }
}

/// A setting from the environment, else from the local stack's env file.
pub fn lookup(key: &str) -> Option<String> {
    if let Ok(v) = std::env::var(key)
        && !v.is_empty()
    {
        return Some(v);
    }
    EnvFile::read(&state_dir().join("local.env"))
        .ok()?
        .0
        .get(key)
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_files_round_trip() {
        let mut m = BTreeMap::new();
        m.insert("A".to_owned(), "1".to_owned());
        m.insert("URL".to_owned(), "http://127.0.0.1:5/x?y=z".to_owned());
        let f = EnvFile(m);
        assert_eq!(EnvFile::parse(&f.render()), f);
    }
}
