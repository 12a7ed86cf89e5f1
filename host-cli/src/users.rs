//! A daemon's users: `serve --users FILE`, a TOML file of names and the
//! sha256 of each user's token. The file never holds a token, so reading it
//! lets no one in; `rh-wasm users add` makes a token and its entry.
//!
//! ```toml
//! [users.alice]
//! token_sha256 = "5e88...  (64 hex digits)"
//! admin = true            # optional: sees and may change everything
//!
//! [users.bob]
//! token_sha256 = "..."
//! ```

use anyhow::{Context, Result, bail};
use rh_runtime::User;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct UsersFile {
    #[serde(default)]
    users: BTreeMap<String, Entry>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    token_sha256: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    admin: bool,
}

/// The users a daemon knows, by the hash of their token.
#[derive(Debug)]
pub struct Users {
    by_hash: HashMap<[u8; 32], User>,
}

/// The sha256 of a token, as stored in the users file.
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Users {
    /// Read and check a users file: every name valid, every hash 64 hex
    /// digits and no two alike, no plain tokens.
    pub fn load(path: &Path) -> Result<Users> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the users file {}", path.display()))?;
        let file = parse(&text).with_context(|| format!("the users file {}", path.display()))?;
        let mut by_hash = HashMap::new();
        for (name, e) in file.users {
            rh_runtime::validate_name("user", &name)?;
            let mut hash = [0u8; 32];
            hex::decode_to_slice(e.token_sha256.trim(), &mut hash).map_err(|_| {
                anyhow::anyhow!(
                    "the users file {}: user `{name}`: token_sha256 must be 64 hex digits \
                     (the sha256 of the token; `rh-wasm users add` writes it)",
                    path.display()
                )
            })?;
            let user = User {
                name: name.clone(),
                admin: e.admin,
            };
            if let Some(other) = by_hash.insert(hash, user) {
                bail!(
                    "the users file {}: users `{}` and `{name}` have the same token",
                    path.display(),
                    other.name
                );
            }
        }
        if by_hash.is_empty() {
            bail!("the users file {} names no users", path.display());
        }
        Ok(Users { by_hash })
    }

    /// The user whose token this is.
    pub fn find(&self, token: &str) -> Option<&User> {
        self.by_hash.get(&token_hash(token))
    }

    /// The user whose token has this sha256.
    pub fn by_hash(&self, hash: &[u8; 32]) -> Option<&User> {
        self.by_hash.get(hash)
    }

    /// The user of this name.
    pub fn by_name(&self, name: &str) -> Option<&User> {
        self.by_hash.values().find(|u| u.name == name)
    }

    /// Whether a user of this name exists.
    pub fn has(&self, name: &str) -> bool {
        self.by_hash.values().any(|u| u.name == name)
    }

    pub fn len(&self) -> usize {
        self.by_hash.len()
    }
}

fn parse(text: &str) -> Result<UsersFile> {
    // Say plainly what is wrong with the most likely mistake.
    if let Ok(v) = toml::from_str::<toml::Value>(text)
        && let Some(users) = v.get("users").and_then(|u| u.as_table())
    {
        for (name, e) in users {
            if e.get("token").is_some() {
                bail!(
                    "user `{name}` has a plain `token`: the file holds only token_sha256, \
                     the sha256 of the token (`rh-wasm users add` writes it)"
                );
            }
        }
    }
    Ok(toml::from_str(text)?)
}

/// `rh-wasm users add FILE NAME --token-file T [--admin]`: add a user. The
/// token is read from T when it exists, else made (32 random bytes, hex)
/// and written to T, readable by its owner only. Only its hash goes into
/// FILE.
pub fn add(file: &Path, name: &str, token_file: &Path, admin: bool) -> Result<String> {
    rh_runtime::validate_name("user", name)?;
    let mut users = match std::fs::read_to_string(file) {
        Ok(t) => parse(&t).with_context(|| format!("the users file {}", file.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => UsersFile::default(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", file.display())),
    };
    if users.users.contains_key(name) {
        bail!(
            "the users file {} has a user `{name}` already",
            file.display()
        );
    }
    let token = if token_file.exists() {
        crate::config::read_token(token_file)?
    } else {
        let token = new_token()?;
        write_private(token_file, &format!("{token}\n"))?;
        token
    };
    let hash = hex::encode(token_hash(&token));
    if users.users.values().any(|e| e.token_sha256 == hash) {
        bail!("another user in {} has this token already", file.display());
    }
    users.users.insert(
        name.to_string(),
        Entry {
            token_sha256: hash,
            admin,
        },
    );
    let tmp = file.with_extension("toml.tmp");
    std::fs::write(&tmp, toml::to_string_pretty(&users)?)
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, file).with_context(|| format!("writing {}", file.display()))?;
    Ok(token)
}

fn new_token() -> Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("reading /dev/urandom")?;
    Ok(hex::encode(bytes))
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_users_file_holds_hashes_and_finds_users_by_token() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("users.toml");
        let tok = dir.path().join("alice.token");
        let token = add(&file, "alice", &tok, true).unwrap();
        add(&file, "bob", &dir.path().join("bob.token"), false).unwrap();
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(!text.contains(&token), "the plain token is not stored");
        assert!(text.contains(&hex::encode(token_hash(&token))));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&tok).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the token file is private");
        let users = Users::load(&file).unwrap();
        assert_eq!(users.len(), 2);
        let alice = users.find(&token).unwrap();
        assert_eq!((alice.name.as_str(), alice.admin), ("alice", true));
        assert!(users.find("not-a-token").is_none());
        assert!(users.has("bob") && !users.has("carol"));
        // A second user of the same name, or of the same token, is refused.
        assert!(add(&file, "alice", &dir.path().join("x"), false).is_err());
        let e = add(&file, "carol", &tok, false).unwrap_err();
        assert!(e.to_string().contains("has this token already"), "{e}");
    }

    #[test]
    fn bad_users_files_are_refused_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            ("[users.alice]\ntoken = \"secret\"\n", "plain `token`"),
            ("[users.alice]\ntoken_sha256 = \"abc\"\n", "64 hex digits"),
            (
                "[users.\"a b\"]\ntoken_sha256 = \"\"\n",
                "invalid user name",
            ),
            ("", "names no users"),
            (
                "[users.alice]\ntoken_sha256 = \"00\"\nadmn = true\n",
                "unknown field",
            ),
            (
                &format!(
                    "[users.a]\ntoken_sha256 = \"{0}\"\n[users.b]\ntoken_sha256 = \"{0}\"\n",
                    "ab".repeat(32)
                ),
                "the same token",
            ),
        ];
        for (i, (text, want)) in cases.iter().enumerate() {
            let p = dir.path().join(format!("u{i}.toml"));
            std::fs::write(&p, text).unwrap();
            let e = format!("{:#}", Users::load(&p).unwrap_err());
            assert!(e.contains(want), "case {i}: {e}");
        }
    }
}
