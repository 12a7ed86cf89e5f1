//! The manifest of a pushed Run: every file of its folder with its size
//! and sha256, as stored next to the blobs (`<run>/manifest.json`).
//!
//! A manifest is what a pull trusts to know what it fetches, so
//! [`Manifest::check`] holds it to the shape of a Run folder before
//! anything is made or downloaded: a `config.json`, only the Run's own
//! file names or files under `scratch/`, each listed once. A signed
//! manifest carries an `hmac` field beside its own (see the signing
//! module); it is not a field of [`Manifest`], so that what is signed is
//! exactly the manifest without it.

use crate::config::{CONFIG, INPUTS, RESULT, STDERR, STDOUT};
use crate::signing::TeamKey;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// The largest manifest pushed or read: about 100,000 files.
pub(crate) const MAX_MANIFEST: u64 = 16 << 20;

/// One file of a pushed Run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    /// Relative to the Run's folder (`config.json`, `scratch/out.txt`).
    pub path: String,
    /// Its length in bytes.
    pub size: u64,
    /// Hex sha256 of the bytes.
    pub sha256: String,
}

/// What a pushed Run holds; put after all its blobs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The layout's version (1).
    pub format: u32,
    /// The Run's name.
    pub run: String,
    /// Every file of the Run's folder.
    pub files: Vec<ManifestFile>,
}

/// A manifest as stored: its fields and, from a signed store, the signature.
#[derive(Deserialize)]
struct Stored {
    #[serde(flatten)]
    manifest: Manifest,
    #[serde(default)]
    hmac: Option<String>,
}

/// What is written: the manifest's fields, then its signature if any.
#[derive(Serialize)]
struct ToStore<'a> {
    #[serde(flatten)]
    manifest: &'a Manifest,
    #[serde(skip_serializing_if = "Option::is_none")]
    hmac: Option<String>,
}

impl Manifest {
    /// A stored manifest and its signature (`hmac`), if it has one. Only
    /// parsed: [`Manifest::check`] and [`TeamKey::verify`] say whether it
    /// may be used.
    pub fn parse(bytes: &[u8]) -> serde_json::Result<(Manifest, Option<String>)> {
        let s: Stored = serde_json::from_slice(bytes)?;
        Ok((s.manifest, s.hmac))
    }

    /// What the team key signs of this manifest: its compact JSON,
    /// without a signature.
    fn signed_form(&self) -> Result<Vec<u8>> {
        serde_json::to_vec(self).map_err(|e| Error::Invalid(e.to_string()))
    }

    /// This manifest's signature by `key`.
    pub fn sign(&self, key: &TeamKey) -> Result<String> {
        key.sign(&self.signed_form()?)
    }

    /// Check that `signature` (as stored next to this manifest) is `key`'s
    /// signature of it.
    pub fn verify(&self, key: &TeamKey, signature: Option<&str>) -> Result<()> {
        key.verify(&self.signed_form()?, &self.run, signature)
    }

    /// The manifest as it is stored: JSON, with its signature by `key`
    /// (`hmac`) when there is one.
    pub fn to_json(&self, key: Option<&TeamKey>) -> Result<Vec<u8>> {
        let hmac = key.map(|k| self.sign(k)).transpose()?;
        let body = serde_json::to_vec_pretty(&ToStore {
            manifest: self,
            hmac,
        })
        .map_err(|e| Error::Invalid(e.to_string()))?;
        if body.len() as u64 > MAX_MANIFEST {
            return Err(Error::Invalid(format!(
                "run `{}` has too many files to push ({}; its manifest would be over {MAX_MANIFEST} bytes)",
                self.run,
                self.files.len()
            )));
        }
        Ok(body)
    }

    /// Check that this describes a Run folder: a valid name, a
    /// `config.json`, each file once, each a file of a Run (its records,
    /// its output, or under `scratch/`) named by a sha256.
    pub fn check(&self) -> Result<()> {
        crate::validate_run_name(&self.run)?;
        let refused = |why: String| {
            Error::Remote(format!(
                "the manifest of `{}` does not describe a Run: {why}",
                self.run
            ))
        };
        let top = [CONFIG, INPUTS, RESULT, STDOUT, STDERR];
        let mut seen = HashSet::new();
        for f in &self.files {
            let in_scratch = f
                .path
                .strip_prefix("scratch/")
                .is_some_and(crate::is_plain_relative);
            if !(top.contains(&f.path.as_str()) || in_scratch) {
                return Err(refused(format!("`{}` is not a file of a Run", f.path)));
            }
            if f.sha256.len() != 64 || !f.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(refused(format!("`{}` has no sha256", f.path)));
            }
            if !seen.insert(f.path.as_str()) {
                return Err(refused(format!("it lists `{}` twice", f.path)));
            }
        }
        if !seen.contains(CONFIG) {
            return Err(refused(format!("it has no {CONFIG}")));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str) -> ManifestFile {
        ManifestFile {
            path: path.into(),
            size: 1,
            sha256: "0f".repeat(32),
        }
    }

    fn manifest(paths: &[&str]) -> Manifest {
        Manifest {
            format: 1,
            run: "r".into(),
            files: paths.iter().map(|p| file(p)).collect(),
        }
    }

    #[test]
    fn only_the_shape_of_a_run_folder_passes() {
        manifest(&["config.json", "inputs.json", "stdout", "scratch/a/b.txt"])
            .check()
            .unwrap();
        for (paths, says) in [
            (&["stdout"][..], "no config.json"),
            (&["config.json", "stdout", "stdout"], "`stdout` twice"),
            (&["config.json", "notes.txt"], "`notes.txt` is not a file"),
            (&["config.json", "scratch/../x"], "not a file"),
            (&["config.json", "scratch"], "not a file"),
            (&["config.json", "/etc/passwd"], "not a file"),
        ] {
            let e = manifest(paths).check().unwrap_err().to_string();
            assert!(
                e.contains(says) && e.contains("does not describe a Run"),
                "{paths:?}: {e}"
            );
        }
        let mut m = manifest(&["config.json"]);
        m.files[0].sha256 = "../x".into();
        assert!(m.check().unwrap_err().to_string().contains("no sha256"));
        m = manifest(&["config.json"]);
        m.run = "../up".into();
        assert!(m.check().is_err());
    }

    #[test]
    fn a_stored_manifest_reads_back_with_its_signature() {
        let m = manifest(&["config.json"]);
        let key = TeamKey::new(vec![3; 32]).unwrap();
        let (back, sig) = Manifest::parse(&m.to_json(Some(&key)).unwrap()).unwrap();
        assert_eq!(back, m);
        back.verify(&key, sig.as_deref()).unwrap();
        let (back, sig) = Manifest::parse(&m.to_json(None).unwrap()).unwrap();
        assert_eq!((back, sig), (m, None));
    }
}
