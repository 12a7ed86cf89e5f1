//! The reader of pushed Runs' manifests (`s3://.../<run>/manifest.json`,
//! and the shared store's entries): any bytes are parsed, checked and
//! verified without a panic; a manifest that passes the check describes a
//! Run folder (a `config.json`, each path once, plain relative paths of Run
//! files or under `scratch/`), and only the team key's own signature of
//! exactly that manifest verifies.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rh_runtime::{Manifest, TeamKey};
use std::collections::HashSet;

fuzz_target!(|data: &[u8]| {
    let key = TeamKey::new(b"fuzzing-team-key-of-32-bytes-ok!".to_vec()).unwrap();
    let Ok((m, hmac)) = Manifest::parse(data) else {
        return;
    };
    if m.verify(&key, hmac.as_deref()).is_ok() {
        assert_eq!(hmac.map(|h| h.to_ascii_lowercase()), Some(m.sign(&key).unwrap()));
    }
    if m.check().is_err() {
        return;
    }
    let mut seen = HashSet::new();
    for f in &m.files {
        assert!(rh_runtime::is_plain_relative(&f.path), "{:?}", f.path);
        assert!(seen.insert(f.path.as_str()), "{:?} twice", f.path);
        assert_eq!(f.sha256.len(), 64);
    }
    assert!(seen.contains("config.json"));
    // What is written reads back the same, and verifies.
    let Ok(stored) = m.to_json(Some(&key)) else {
        return;
    };
    let (again, sig) = Manifest::parse(&stored).unwrap();
    assert_eq!(again, m);
    again.verify(&key, sig.as_deref()).unwrap();
});
