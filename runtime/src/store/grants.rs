//! The grants file, `<root>/access/shares.json`: which user may read or
//! write which object besides its owner. It is replaced atomically under a
//! lock, and read once per version (by its stamp). The policy that applies
//! grants is `access`.

use crate::store::files::{Stamp, lock, stamp, write_atomic};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// A level of access, `read` below `write`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// Call a function, read a Run, load an artifact.
    Read,
    /// Also cancel, delete, redeploy, save a new version.
    Write,
}

impl std::fmt::Display for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Access::Read => "read",
            Access::Write => "write",
        })
    }
}

impl std::str::FromStr for Access {
    type Err = Error;
    fn from_str(s: &str) -> Result<Access> {
        match s {
            "read" => Ok(Access::Read),
            "write" => Ok(Access::Write),
            other => Err(Error::Invalid(format!(
                "unknown access `{other}` (read or write)"
            ))),
        }
    }
}

/// What kind of object a name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    /// A deployed name.
    Function,
    /// A Run.
    Run,
    /// A named artifact.
    Artifact,
    /// An unnamed component added for command Runs, by digest: whoever
    /// uploaded its bytes may run it.
    Component,
}

impl ObjectKind {
    /// The kinds a user names when sharing or deleting.
    pub const NAMED: [ObjectKind; 3] =
        [ObjectKind::Function, ObjectKind::Run, ObjectKind::Artifact];

    pub(crate) fn what(self) -> &'static str {
        match self {
            ObjectKind::Function => "deployed function",
            ObjectKind::Run => "run",
            ObjectKind::Artifact => "artifact",
            ObjectKind::Component => "component",
        }
    }
}

impl std::fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ObjectKind::Function => "function",
            ObjectKind::Run => "run",
            ObjectKind::Artifact => "artifact",
            ObjectKind::Component => "component",
        })
    }
}

impl std::str::FromStr for ObjectKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<ObjectKind> {
        match s {
            "function" => Ok(ObjectKind::Function),
            "run" => Ok(ObjectKind::Run),
            "artifact" => Ok(ObjectKind::Artifact),
            other => Err(Error::Invalid(format!(
                "unknown kind `{other}` (function, run or artifact)"
            ))),
        }
    }
}

/// One grant: `user` has `access` to the object `kind`/`name`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Share {
    /// The object's kind.
    pub kind: ObjectKind,
    /// The object's name.
    pub name: String,
    /// Who was granted access.
    pub user: String,
    /// What they may do.
    pub access: Access,
}

pub(crate) type Key = (ObjectKind, String);
pub(crate) type Index = HashMap<Key, Vec<(String, Access)>>;

pub(crate) struct AccessStore {
    path: PathBuf,
    lock: PathBuf,
    seen: Mutex<Option<(Stamp, Arc<Index>)>>,
}

impl AccessStore {
    pub fn open(root: &Path) -> Result<AccessStore> {
        let dir = root.join("access");
        fs::create_dir_all(&dir).map_err(|e| Error::io("create folder", &dir, e))?;
        Ok(AccessStore {
            path: dir.join("shares.json"),
            lock: dir.join(".shares.lock"),
            seen: Mutex::new(None),
        })
    }

    fn read(&self) -> Result<Vec<Share>> {
        match fs::read(&self.path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|source| Error::Corrupt {
                path: self.path.clone(),
                source,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(Error::io("read", &self.path, e)),
        }
    }

    /// Every grant, by object. Parsed once per version of the file (it is
    /// replaced by rename, so a change is a new inode): one `statx` a check.
    pub fn index(&self) -> Result<Arc<Index>> {
        let now = stamp(&self.path);
        let mut seen = self.seen.lock().expect("shares cache poisoned");
        if let (Some(now), Some((at, index))) = (now, seen.as_ref())
            && *at == now
        {
            return Ok(index.clone());
        }
        let mut index = Index::new();
        for s in self.read()? {
            index
                .entry((s.kind, s.name))
                .or_default()
                .push((s.user, s.access));
        }
        let index = Arc::new(index);
        if let Some(now) = now {
            *seen = Some((now, index.clone()));
        }
        Ok(index)
    }

    /// What `user` was granted on an object.
    pub fn granted(&self, kind: ObjectKind, name: &str, user: &str) -> Result<Option<Access>> {
        Ok(self
            .index()?
            .get(&(kind, name.to_string()))
            .and_then(|v| v.iter().find(|(u, _)| u == user).map(|(_, a)| *a)))
    }

    /// Change the grants under the lock, and write them back atomically.
    fn update<R>(&self, change: impl FnOnce(&mut Vec<Share>) -> R) -> Result<R> {
        let _lock = lock(&self.lock)?;
        let mut shares = self.read()?;
        let r = change(&mut shares);
        shares.sort_by(|a, b| {
            (a.kind as u8, &a.name, &a.user).cmp(&(b.kind as u8, &b.name, &b.user))
        });
        let bytes =
            serde_json::to_vec_pretty(&shares).map_err(|e| Error::Invalid(e.to_string()))?;
        write_atomic(&self.path, &bytes)?;
        Ok(r)
    }

    pub fn grant(&self, kind: ObjectKind, name: &str, user: &str, access: Access) -> Result<()> {
        self.update(|shares| {
            shares.retain(|s| !(s.kind == kind && s.name == name && s.user == user));
            shares.push(Share {
                kind,
                name: name.to_string(),
                user: user.to_string(),
                access,
            });
        })
    }

    /// Remove one user's grant, or (with `user` None) every grant on the
    /// object; whether there was any.
    pub fn revoke(&self, kind: ObjectKind, name: &str, user: Option<&str>) -> Result<bool> {
        if !self.index()?.contains_key(&(kind, name.to_string())) {
            return Ok(false);
        }
        self.update(|shares| {
            let before = shares.len();
            shares.retain(|s| {
                !(s.kind == kind && s.name == name && user.is_none_or(|u| s.user == u))
            });
            shares.len() != before
        })
    }

    pub fn all(&self) -> Result<Vec<Share>> {
        self.read()
    }
}
