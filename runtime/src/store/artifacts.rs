//! Named artifacts kept by a cluster, by content digest.
//!
//! Layout under `<root>/artifacts/`: `blobs/<sha256 hex>` holds each version's
//! bytes once, whatever its name; `names/<name>.json` lists a name's versions
//! in order, the last being current. A Run records the exact version
//! (`name` + `digest`) it loaded or saved, so lineage and caching can tell
//! versions apart later. Saving takes the name's `flock`, so concurrent
//! savers from any process append without losing versions.

use crate::config::ArtifactRef;
use crate::store::files::{lock, write_atomic};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};

/// One stored version of an artifact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactVersion {
    /// Content digest (`sha256:...`).
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
    /// When it was saved (RFC 3339, UTC).
    pub created: String,
    /// The Run that saved it, if a Run did.
    pub run: Option<String>,
    /// Who saved it, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saved_by: Option<String>,
}

/// An artifact and its versions, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artifact {
    /// Its name.
    pub name: String,
    /// Its versions, oldest first; the last is current.
    pub versions: Vec<ArtifactVersion>,
    /// Who owns the name: the user who saved its first version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creator: Option<String>,
}

pub(crate) struct ArtifactStore {
    blobs: PathBuf,
    names: PathBuf,
}

/// `sha256:<hex>` of some bytes.
pub fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

impl ArtifactStore {
    pub fn open(root: &Path) -> Result<Self> {
        let dir = root.join("artifacts");
        let s = ArtifactStore {
            blobs: dir.join("blobs"),
            names: dir.join("names"),
        };
        for d in [&s.blobs, &s.names] {
            fs::create_dir_all(d).map_err(|e| Error::io("create folder", d, e))?;
        }
        Ok(s)
    }

    fn blob(&self, digest: &str) -> PathBuf {
        self.blobs.join(digest.trim_start_matches("sha256:"))
    }

    pub fn get(&self, name: &str) -> Result<Artifact> {
        crate::validate_name("artifact", name)?;
        let path = self.names.join(format!("{name}.json"));
        match fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|source| Error::Corrupt { path, source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::NotFound {
                what: "artifact",
                name: name.to_string(),
            }),
            Err(e) => Err(Error::io("read", &path, e)),
        }
    }

    /// The bytes of the current version, or of the version whose digest is
    /// (or starts with) `version`, once `allow` accepts the artifact.
    pub fn load(
        &self,
        name: &str,
        version: Option<&str>,
        allow: &dyn Fn(&Artifact) -> Result<()>,
    ) -> Result<(Vec<u8>, ArtifactRef)> {
        self.load_within(name, version, allow, u64::MAX)
    }

    /// [`ArtifactStore::load`], refusing a version of more than `max`
    /// bytes (a guest's memory limit) before reading any of it.
    pub fn load_within(
        &self,
        name: &str,
        version: Option<&str>,
        allow: &dyn Fn(&Artifact) -> Result<()>,
        max: u64,
    ) -> Result<(Vec<u8>, ArtifactRef)> {
        let art = self.get(name)?;
        allow(&art)?;
        let v = match version {
            None => art.versions.last().ok_or_else(|| Error::NotFound {
                what: "artifact",
                name: name.to_string(),
            })?,
            Some(digest) => art
                .versions
                .iter()
                .find(|v| {
                    v.digest == digest || v.digest.trim_start_matches("sha256:").starts_with(digest)
                })
                .ok_or_else(|| Error::NotFound {
                    what: "artifact version",
                    name: format!("{name}@{digest}"),
                })?,
        };
        let path = self.blob(&v.digest);
        let mut file = File::open(&path).map_err(|e| Error::io("open", &path, e))?;
        // The file's own size, not the record's: it is what would be read.
        let size = file
            .metadata()
            .map_err(|e| Error::io("read", &path, e))?
            .len();
        if size > max {
            return Err(Error::Invalid(format!(
                "artifact `{name}` is {size} bytes, more than the memory limit of this Run \
                 ({max} bytes): it could not fit in the guest"
            )));
        }
        let mut bytes = Vec::with_capacity(size as usize);
        file.read_to_end(&mut bytes)
            .map_err(|e| Error::io("read", &path, e))?;
        Ok((
            bytes,
            ArtifactRef {
                name: name.to_string(),
                digest: v.digest.clone(),
            },
        ))
    }

    /// Store a new version (or make an equal old one current again).
    /// `creator` owns a new name; `allow` is asked about an existing one,
    /// under the name's lock.
    pub fn save(
        &self,
        name: &str,
        data: &[u8],
        run: Option<&str>,
        creator: Option<&str>,
        allow: &dyn Fn(&Artifact) -> Result<()>,
    ) -> Result<ArtifactRef> {
        crate::validate_name("artifact", name)?;
        let digest = digest_of(data);
        let blob = self.blob(&digest);
        if !blob.exists() {
            write_atomic(&blob, data)?;
        }
        let _lock = self.lock(name)?;
        let mut art = match self.get(name) {
            Ok(a) => {
                allow(&a)?;
                a
            }
            Err(Error::NotFound { .. }) => Artifact {
                name: name.to_string(),
                versions: Vec::new(),
                creator: creator.map(str::to_string),
            },
            Err(e) => return Err(e),
        };
        art.versions.push(ArtifactVersion {
            digest: digest.clone(),
            size: data.len() as u64,
            created: crate::names::now_rfc3339(),
            run: run.map(str::to_string),
            saved_by: creator.map(str::to_string),
        });
        let path = self.names.join(format!("{name}.json"));
        let bytes = serde_json::to_vec_pretty(&art).map_err(|e| Error::Invalid(e.to_string()))?;
        write_atomic(&path, &bytes)?;
        Ok(ArtifactRef {
            name: name.to_string(),
            digest,
        })
    }

    /// The name's lock, held while its record changes.
    fn lock(&self, name: &str) -> Result<File> {
        lock(&self.names.join(format!(".{name}.lock")))
    }

    /// Forget an artifact's name when `allow` says so. Its bytes stay:
    /// recorded Runs name their versions.
    pub fn remove(&self, name: &str, allow: &dyn Fn(&Artifact) -> Result<()>) -> Result<()> {
        let _lock = self.lock(name)?;
        let art = self.get(name)?;
        allow(&art)?;
        let path = self.names.join(format!("{name}.json"));
        fs::remove_file(&path).map_err(|e| Error::io("remove", &path, e))
    }

    /// Drop the versions of `name` that are not current and that `keep`
    /// does not keep, under the name's lock: the versions dropped.
    pub fn prune(
        &self,
        name: &str,
        keep: &dyn Fn(&ArtifactVersion) -> bool,
    ) -> Result<Vec<ArtifactVersion>> {
        let _lock = self.lock(name)?;
        let mut art = self.get(name)?;
        let Some(current) = art.versions.pop() else {
            return Ok(Vec::new());
        };
        let (kept, dropped): (Vec<_>, Vec<_>) = art
            .versions
            .drain(..)
            .partition(|v| v.digest == current.digest || keep(v));
        if dropped.is_empty() {
            return Ok(dropped);
        }
        art.versions = kept;
        art.versions.push(current);
        let path = self.names.join(format!("{name}.json"));
        let bytes = serde_json::to_vec_pretty(&art).map_err(|e| Error::Invalid(e.to_string()))?;
        write_atomic(&path, &bytes)?;
        Ok(dropped)
    }

    /// Every stored blob: its digest, size and age.
    pub fn blobs(&self) -> Result<Vec<(String, u64, std::time::Duration)>> {
        stored_files(&self.blobs, "")
    }

    /// Remove a blob: the bytes freed.
    pub fn remove_blob(&self, digest: &str) -> u64 {
        remove_counted(&[self.blob(digest)])
    }

    pub fn list(&self) -> Result<Vec<Artifact>> {
        let mut out = Vec::new();
        let entries = fs::read_dir(&self.names).map_err(|e| Error::io("read", &self.names, e))?;
        for e in entries.flatten() {
            let n = e.file_name();
            let Some(name) = n.to_str().and_then(|n| n.strip_suffix(".json")) else {
                continue;
            };
            if name.starts_with('.') {
                continue;
            }
            out.push(self.get(name)?);
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }
}

/// The files in `dir` ending in `suffix` (not hidden): `sha256:<stem>`,
/// size and age.
pub(crate) fn stored_files(
    dir: &Path,
    suffix: &str,
) -> Result<Vec<(String, u64, std::time::Duration)>> {
    let mut out = Vec::new();
    let entries = fs::read_dir(dir).map_err(|e| Error::io("read", dir, e))?;
    for e in entries.flatten() {
        let n = e.file_name();
        let Some(stem) = n.to_str().and_then(|n| n.strip_suffix(suffix)) else {
            continue;
        };
        if stem.starts_with('.') || stem.contains('.') {
            continue;
        }
        if let Ok(m) = e.metadata() {
            let age = m
                .modified()
                .ok()
                .and_then(|t| t.elapsed().ok())
                .unwrap_or_default();
            out.push((format!("sha256:{stem}"), m.len(), age));
        }
    }
    Ok(out)
}

/// Remove files, the bytes freed.
pub(crate) fn remove_counted(paths: &[PathBuf]) -> u64 {
    paths
        .iter()
        .filter_map(|p| {
            let len = fs::symlink_metadata(p).ok()?.len();
            fs::remove_file(p).ok().map(|()| len)
        })
        .sum()
}
