//! The team key of a shared store, and the signatures it puts on manifests.
//!
//! A shared store is a bucket that every cluster of a team writes; whoever
//! can write it could otherwise plant an entry that answers someone's call
//! with a result nobody computed. So each cluster holds a team secret
//! ([`TeamKey`]), signs the manifest of every Run it publishes with
//! HMAC-SHA256, and takes only entries whose manifest carries a signature
//! by the same key. The manifest names every file by its sha256, so the
//! signature covers every byte of the Run.
//!
//! What is signed is the manifest as the runtime serializes it (compact
//! JSON of `Manifest`, without the signature; see `Manifest::sign`), after a fixed label that
//! keeps these signatures from meaning anything elsewhere. A verifier
//! parses the stored manifest and serializes it again the same way, so
//! whitespace or fields it does not know cannot change what it checks.
//! Comparison is constant-time (`hmac`'s `verify_slice`).

use crate::{Error, Result};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::io::Read;
use std::path::Path;

/// What comes before the manifest in what is signed.
const LABEL: &[u8] = b"rh-wasm shared-store manifest v1\n";

/// A team's secret, shared by the clusters that publish to and take hits
/// from one shared store.
#[derive(Clone)]
pub struct TeamKey {
    bytes: Vec<u8>,
}

impl std::fmt::Debug for TeamKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TeamKey(..)")
    }
}

impl TeamKey {
    /// The fewest bytes a key may have: 256 bits of secret.
    pub const MIN_LEN: usize = 32;
    /// The most: a key file is a secret, not a document.
    pub const MAX_LEN: usize = 1024;

    /// A key from its bytes (all of them, as they are).
    pub fn new(bytes: Vec<u8>) -> Result<TeamKey> {
        if bytes.len() < Self::MIN_LEN || bytes.len() > Self::MAX_LEN {
            return Err(Error::Invalid(format!(
                "a team key is {} bytes; it must have between {} and {} \
                 (make one with `head -c 32 /dev/urandom > team.key`)",
                bytes.len(),
                Self::MIN_LEN,
                Self::MAX_LEN
            )));
        }
        Ok(TeamKey { bytes })
    }

    /// The key held by the file at `path`: its bytes, all of them.
    pub fn read(path: &Path) -> Result<TeamKey> {
        let file = std::fs::File::open(path).map_err(|e| Error::io("read", path, e))?;
        let mut bytes = Vec::new();
        file.take(Self::MAX_LEN as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io("read", path, e))?;
        TeamKey::new(bytes).map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))
    }

    fn mac(&self, body: &[u8]) -> Result<Hmac<Sha256>> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.bytes)
            .map_err(|e| Error::Invalid(format!("team key: {e}")))?;
        mac.update(LABEL);
        mac.update(body);
        Ok(mac)
    }

    /// The signature of `body` (hex HMAC-SHA256 after the label).
    pub fn sign(&self, body: &[u8]) -> Result<String> {
        Ok(hex::encode(self.mac(body)?.finalize().into_bytes()))
    }

    /// Check that `signature` (as stored next to the manifest of Run `run`,
    /// whose signed form is `body`) is this key's signature of `body`.
    pub fn verify(&self, body: &[u8], run: &str, signature: Option<&str>) -> Result<()> {
        let Some(signature) = signature else {
            return Err(Error::Remote(format!(
                "the manifest of `{run}` is not signed; the shared store takes only \
                 Runs signed with the team key"
            )));
        };
        let tag = hex::decode(signature).unwrap_or_default();
        self.mac(body)?.verify_slice(&tag).map_err(|_| {
            Error::Remote(format!(
                "the manifest of `{run}` is not signed with this team key"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_holds_for_its_bytes_and_key_only() {
        let key = TeamKey::new(vec![7; 32]).unwrap();
        let m = br#"{"format":1,"run":"r","files":[]}"#;
        let sig = key.sign(m).unwrap();
        key.verify(m, "r", Some(&sig)).unwrap();
        let other = TeamKey::new(vec![8; 32]).unwrap();
        assert!(other.verify(m, "r", Some(&sig)).is_err());
        let changed = br#"{"format":1,"run":"s","files":[]}"#;
        assert!(key.verify(changed, "s", Some(&sig)).is_err());
        for bad in [None, Some(""), Some("zz"), Some(&sig[..62])] {
            let e = key.verify(m, "r", bad).unwrap_err().to_string();
            assert!(e.contains("signed"), "{e}");
        }
    }

    #[test]
    fn short_or_huge_keys_are_refused_with_how_to_make_one() {
        let e = TeamKey::new(vec![1; 31]).unwrap_err().to_string();
        assert!(e.contains("31 bytes") && e.contains("/dev/urandom"), "{e}");
        assert!(TeamKey::new(vec![1; TeamKey::MAX_LEN + 1]).is_err());
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("team.key");
        std::fs::write(&f, b"short\n").unwrap();
        let e = TeamKey::read(&f).unwrap_err().to_string();
        assert!(e.contains("team.key") && e.contains("6 bytes"), "{e}");
        std::fs::write(&f, [9u8; 32]).unwrap();
        assert!(format!("{:?}", TeamKey::read(&f).unwrap()) == "TeamKey(..)");
    }
}
