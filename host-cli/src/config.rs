//! The client's cluster list: a TOML file in the user's config dir
//! (`$XDG_CONFIG_HOME/rh-wasm/config.toml`, else `~/.config/...`), or the
//! file named by `RH_WASM_CONFIG`. Tokens stay in their own files; the
//! config only names them.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Config {
    #[serde(default)]
    pub clusters: BTreeMap<String, ClusterEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterEntry {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
}

pub fn path() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("RH_WASM_CONFIG") {
        return Ok(PathBuf::from(p));
    }
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(std::env::var_os("HOME").context("HOME is not set")?).join(".config"),
    };
    Ok(base.join("rh-wasm").join("config.toml"))
}

pub fn load() -> Result<Config> {
    let p = path()?;
    match std::fs::read_to_string(&p) {
        Ok(s) => toml::from_str(&s).with_context(|| format!("reading {}", p.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
        Err(e) => Err(e).with_context(|| format!("reading {}", p.display())),
    }
}

pub fn save(c: &Config) -> Result<()> {
    let p = path()?;
    if let Some(dir) = p.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let tmp = p.with_extension("toml.tmp");
    std::fs::write(&tmp, toml::to_string_pretty(c)?)
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &p).with_context(|| format!("writing {}", p.display()))?;
    Ok(())
}

pub fn read_token(file: &std::path::Path) -> Result<String> {
    let t = std::fs::read_to_string(file)
        .with_context(|| format!("reading token file {}", file.display()))?
        .trim()
        .to_string();
    anyhow::ensure!(!t.is_empty(), "token file {} is empty", file.display());
    Ok(t)
}
