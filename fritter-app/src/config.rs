//! Where the app keeps its data, decided once from the command line and the environment so every
//! command agrees on it.

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::bail;
use serde::Serialize;

/// The settings of one `fritter` run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Config {
    /// The data directory: identity and archives.
    pub data_dir: PathBuf,
}

impl Config {
    /// The configuration for this process: `--data-dir` if given, else the environment.
    pub fn load(data_dir: Option<PathBuf>) -> anyhow::Result<Config> {
        let mut config = Config::resolve(data_dir, |name| std::env::var_os(name))?;
        // Messages name the directory; an absolute path means the same from anywhere.
        if let Ok(absolute) = std::path::absolute(&config.data_dir) {
            config.data_dir = absolute;
        }
        Ok(config)
    }

    /// `--data-dir`, else `$FRITTER_DATA_DIR`, else `$XDG_DATA_HOME/fritter`, else
    /// `~/.local/share/fritter`; `env` reads the environment (a parameter, so tests need not
    /// change the real one). Empty variables count as unset, and a relative `$XDG_DATA_HOME` is
    /// ignored, as the XDG base directory specification asks.
    pub fn resolve(
        data_dir: Option<PathBuf>,
        env: impl Fn(&str) -> Option<OsString>,
    ) -> anyhow::Result<Config> {
        let var = |name: &str| env(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        let data_dir = if let Some(dir) = data_dir {
            dir
        } else if let Some(dir) = var("FRITTER_DATA_DIR") {
            dir
        } else if let Some(xdg) = var("XDG_DATA_HOME").filter(|p| p.is_absolute()) {
            xdg.join("fritter")
        } else if let Some(home) = var("HOME") {
            home.join(".local").join("share").join("fritter")
        } else {
            bail!("cannot tell where to keep your data: HOME is not set; pass --data-dir DIR or set FRITTER_DATA_DIR");
        };
        Ok(Config { data_dir })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(flag: Option<&str>, env: &[(&str, &str)], expected: Result<&str, &str>) {
        let env: Vec<(String, OsString)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        let got = Config::resolve(flag.map(PathBuf::from), |name| {
            env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        });
        match (got, expected) {
            (Ok(config), Ok(want)) => assert_eq!(config.data_dir, PathBuf::from(want)),
            (Err(err), Err(fragment)) => assert!(err.to_string().contains(fragment), "{err}"),
            (got, want) => panic!("got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn data_dir_precedence() {
        let all = [
            ("FRITTER_DATA_DIR", "/f"),
            ("XDG_DATA_HOME", "/x"),
            ("HOME", "/h"),
        ];
        check(Some("/flag"), &all, Ok("/flag"));
        check(None, &all, Ok("/f"));
        check(None, &all[1..], Ok("/x/fritter"));
        check(None, &all[2..], Ok("/h/.local/share/fritter"));
        check(
            None,
            &[("FRITTER_DATA_DIR", ""), ("HOME", "/h")],
            Ok("/h/.local/share/fritter"),
        );
        check(
            None,
            &[("XDG_DATA_HOME", "rel"), ("HOME", "/h")],
            Ok("/h/.local/share/fritter"),
        );
        check(None, &[], Err("pass --data-dir"));
    }
}
