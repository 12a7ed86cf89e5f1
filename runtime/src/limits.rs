//! Per-call limits: fuel, memory, wall-clock time, output size, and the
//! scratch space of a command Run.
//!
//! [`Limits`] is what a Run records in `config.json` (`limits`), and what the
//! executor enforces. The cluster's scratch limit is a ceiling as well as a
//! default: disk is shared by every Run of the host, so a request may ask
//! for less scratch space, never for more. Sizes and durations are also parsed here from the forms
//! users type (`64MiB`, `500ms`), so the CLI and the daemon agree on them.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The limits of one call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Fuel budget; `None` is unlimited (the guest can still be cancelled).
    pub fuel: Option<u64>,
    /// Maximum linear memory, in bytes, summed over the guest's memories.
    pub memory: u64,
    /// Wall-clock timeout in milliseconds.
    pub timeout_ms: u64,
    /// Cap on the bytes written to `stdout` and `stderr` together.
    pub output: u64,
    /// Cap on the disk space a command Run's `scratch/` folder may take
    /// (allocated bytes, all its commands together). `None` on a function
    /// Run, which has no scratch folder; as a cluster default, no cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scratch: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel: None,
            memory: 256 << 20,
            timeout_ms: 5 * 60 * 1000,
            output: 64 << 20,
            scratch: Some(Limits::DEFAULT_SCRATCH),
        }
    }
}

impl Limits {
    /// The timeout as a [`Duration`].
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// These limits with a request's own settings put over them, checked.
    pub(crate) fn with(
        &self,
        fuel: Option<u64>,
        memory: Option<u64>,
        timeout: Option<Duration>,
    ) -> crate::Result<Limits> {
        let mut l = self.clone();
        if fuel.is_some() {
            l.fuel = fuel;
        }
        if let Some(m) = memory {
            l.memory = m;
        }
        if let Some(t) = timeout {
            l.timeout_ms = t.as_millis().min(u64::MAX as u128) as u64;
        }
        if l.memory > Limits::MAX_MEMORY {
            return Err(crate::Error::Invalid(format!(
                "memory limit {} is over the maximum of {} bytes (4GiB)",
                l.memory,
                Limits::MAX_MEMORY
            )));
        }
        if l.timeout_ms == 0 {
            return Err(crate::Error::Invalid(
                "the timeout must be more than 0".into(),
            ));
        }
        Ok(l)
    }

    /// These limits with a command Run's own scratch limit, which may be
    /// lower than the cluster's but not higher.
    pub(crate) fn with_scratch(mut self, scratch: Option<u64>) -> crate::Result<Limits> {
        match (scratch, self.scratch) {
            (Some(asked), Some(cap)) if asked > cap => Err(crate::Error::Invalid(format!(
                "scratch limit {} is over the cluster's limit of {}",
                format_size(asked),
                format_size(cap)
            ))),
            (Some(asked), _) => {
                self.scratch = Some(asked);
                Ok(self)
            }
            (None, _) => Ok(self),
        }
    }

    /// These limits for a function Run: no scratch folder, so no scratch
    /// limit to record.
    pub(crate) fn without_scratch(mut self) -> Limits {
        self.scratch = None;
        self
    }

    /// The largest memory limit a call may ask for: the size of one slot of
    /// the instance pool.
    pub const MAX_MEMORY: u64 = 4 << 30;

    /// The default scratch limit of a command Run: 1 GiB.
    pub const DEFAULT_SCRATCH: u64 = 1 << 30;
}

/// Print a size for people: exact in the largest unit that divides it
/// (`32MiB`), else to a tenth (`1.5GiB`).
///
/// ```
/// assert_eq!(rh_runtime::format_size(32 << 20), "32MiB");
/// assert_eq!(rh_runtime::format_size(3 << 29), "1.5GiB");
/// assert_eq!(rh_runtime::format_size(1000), "1000 bytes");
/// ```
pub fn format_size(bytes: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (unit, name) in UNITS {
        if bytes >= unit {
            return if bytes.is_multiple_of(unit) {
                format!("{}{name}", bytes / unit)
            } else {
                format!("{:.1}{name}", bytes as f64 / unit as f64)
            };
        }
    }
    format!("{bytes} bytes")
}

/// Parse a size: plain bytes (`1048576`) or with a suffix (`64KiB`, `64MiB`,
/// `1GiB`, `10MB`, `1k`).
///
/// ```
/// assert_eq!(rh_runtime::parse_size("64MiB").unwrap(), 64 << 20);
/// assert_eq!(rh_runtime::parse_size("1000").unwrap(), 1000);
/// assert!(rh_runtime::parse_size("lots").is_err());
/// ```
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{text}` is not a size (try 1048576, 64KiB, 64MiB or 1GiB)"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "kb" => 1000,
        "m" | "mib" => 1 << 20,
        "mb" => 1_000_000,
        "g" | "gib" => 1 << 30,
        "gb" => 1_000_000_000,
        _ => {
            return Err(format!(
                "`{text}`: unknown size unit `{unit}` (use KiB, MiB or GiB)"
            ));
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("`{text}` is too large"))
}

/// Parse a duration with a unit: `250ms`, `30s`, `5m`, `1h`, `7d`.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(rh_runtime::parse_duration("500ms").unwrap(), Duration::from_millis(500));
/// assert_eq!(rh_runtime::parse_duration("5m").unwrap(), Duration::from_secs(300));
/// assert!(rh_runtime::parse_duration("5").is_err());
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (try 500ms, 30s or 5m)"))?;
    let d = match unit.trim() {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" | "min" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        "d" => Duration::from_secs(n.saturating_mul(86_400)),
        "" => return Err(format!("`{text}` needs a unit (ms, s, m, h or d)")),
        other => {
            return Err(format!(
                "`{text}`: unknown duration unit `{other}` (use ms, s, m, h or d)"
            ));
        }
    };
    Ok(d)
}

/// Print a duration the way [`parse_duration`] reads it.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(3_600_000) && ms > 0 {
        format!("{}h", ms / 3_600_000)
    } else if ms.is_multiple_of(60_000) && ms > 0 {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) && ms > 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}
