//! Names of Runs, functions and artifacts, and the automatic Run names.
//!
//! A name becomes a folder or file name on disk, so the rule is strict and
//! checked before anything is written: letters, digits, `-`, `_`, `.`; at
//! most 128 bytes; never starting with `.` (the stores keep their own
//! working files under such names, and lists skip them). Automatic Run names are
//! `<fn>_<UTC timestamp with microseconds>`; a process-wide clock that never
//! repeats a microsecond keeps them unique among concurrent calls, and the
//! atomic folder claim of the run store settles the rare clash between
//! processes.

use crate::{Error, Result};
use std::sync::atomic::{AtomicI64, Ordering};
use time::OffsetDateTime;

/// The longest name allowed, in bytes.
pub const MAX_NAME_LEN: usize = 128;

/// Check a Run name against the naming rule.
///
/// ```
/// use rh_runtime::validate_run_name;
/// assert!(validate_run_name("my_fn_run").is_ok());
/// assert!(validate_run_name("../etc").is_err());
/// assert!(validate_run_name("a b").is_err());
/// ```
pub fn validate_run_name(name: &str) -> Result<()> {
    validate_name("run", name)
}

/// Check a name of any kind (`what` says which, for the message).
pub fn validate_name(what: &'static str, name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        Some("it is empty")
    } else if name.len() > MAX_NAME_LEN {
        Some("it is longer than 128 bytes")
    } else if name.starts_with('.') {
        Some("a name may not start with `.`")
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        Some("only letters, digits, `-`, `_` and `.` are allowed")
    } else {
        None
    };
    match reason {
        None => Ok(()),
        Some(reason) => Err(Error::InvalidName {
            what,
            name: name.escape_debug().to_string().chars().take(160).collect(),
            reason,
        }),
    }
}

/// The most tags one Run takes.
pub const MAX_TAGS: usize = 32;

/// The longest tag value, in bytes.
pub const MAX_TAG_VALUE: usize = 256;

/// Check a tag (`--tag key=value`): its key follows the naming rule, its
/// value is at most 256 bytes with no control characters.
///
/// ```
/// use rh_runtime::validate_tag;
/// assert!(validate_tag("team", "search").is_ok());
/// assert!(validate_tag("experiment", "lr 0.01, 3 layers").is_ok());
/// assert!(validate_tag("", "x").is_err());
/// assert!(validate_tag("a b", "x").is_err());
/// assert!(validate_tag("k", "line\nbreak").is_err());
/// ```
pub fn validate_tag(key: &str, value: &str) -> Result<()> {
    validate_name("tag", key)?;
    if value.len() > MAX_TAG_VALUE {
        return Err(Error::Invalid(format!(
            "the value of tag `{key}` is longer than {MAX_TAG_VALUE} bytes"
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(Error::Invalid(format!(
            "the value of tag `{key}` holds a control character"
        )));
    }
    Ok(())
}

static LAST_MICROS: AtomicI64 = AtomicI64::new(0);

/// A fresh automatic Run name for a call of `fn_name`.
pub fn auto_run_name(fn_name: &str) -> String {
    let now = OffsetDateTime::now_utc();
    let mut micros = (now.unix_timestamp_nanos() / 1000) as i64;
    // Never hand out the same microsecond twice in this process.
    let mut last = LAST_MICROS.load(Ordering::Relaxed);
    loop {
        if micros <= last {
            micros = last + 1;
        }
        match LAST_MICROS.compare_exchange_weak(last, micros, Ordering::Relaxed, Ordering::Relaxed)
        {
            Ok(_) => break,
            Err(actual) => last = actual,
        }
    }
    name_at(fn_name, micros)
}

pub(crate) fn name_at(fn_name: &str, micros: i64) -> String {
    let at = OffsetDateTime::from_unix_timestamp_nanos(micros as i128 * 1000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let stem: String = fn_name
        .rsplit('/')
        .next()
        .unwrap_or(fn_name)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(MAX_NAME_LEN - 32)
        .collect();
    format!(
        "{stem}_{:04}{:02}{:02}T{:02}{:02}{:02}.{:06}Z",
        at.year(),
        at.month() as u8,
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.microsecond()
    )
}

/// Now, as RFC 3339 in UTC with microseconds.
/// Now, as Run records write times (RFC 3339, UTC, microseconds).
pub fn now_rfc3339() -> String {
    crate::format_when(std::time::SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn rule() {
        for ok in ["a", "my_fn_run", "A-1.2_b", &"x".repeat(128), "a..."] {
            validate_run_name(ok).unwrap();
        }
        for bad in [
            "",
            ".",
            "..",
            "...",
            ".hidden",
            ".trash-x",
            "a/b",
            "a b",
            "é",
            "a\0",
            &"x".repeat(129),
            "a\\b",
        ] {
            assert!(validate_run_name(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn auto_names_are_unique_and_valid() {
        let names: Vec<String> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(|| {
                        (0..500)
                            .map(|_| auto_run_name("summer"))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
        });
        let set: HashSet<_> = names.iter().collect();
        assert_eq!(set.len(), names.len());
        for n in &names {
            validate_run_name(n).unwrap();
            assert!(n.starts_with("summer_"), "{n}");
        }
        assert_eq!(name_at("pipe/train", 0), "train_19700101T000000.000000Z");
    }
}
