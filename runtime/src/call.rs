//! A call request, and how its arguments become the canonical input bytes.
//!
//! Arguments are JSON: an array (positional) or an object (by parameter
//! name). The host checks them against the parameter names the component
//! described at deploy, so a wrong count or a misspelt name is refused before
//! any Run is written; decoding each value into its Rust type is the guest's
//! job. The canonical bytes (compact JSON, object keys sorted) are what
//! `inputs.json` holds and what `input_digest` hashes, so the same call
//! spelled with other whitespace or key order is the same call.

use crate::execute::host::OutputObserver;
use crate::functions::FunctionDesc;
use crate::{Error, Limits, Result};
use serde_json::Value;
use std::fmt;
use std::time::Duration;

/// A call of a deployed function.
///
/// ```
/// use rh_runtime::CallRequest;
/// use std::time::Duration;
/// let req = CallRequest::new("summer", serde_json::json!([1, 2]))
///     .run_name("my_fn_run")
///     .fuel(1_000_000_000)
///     .timeout(Duration::from_secs(5));
/// assert_eq!(req.function, "summer");
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct CallRequest {
    /// `NAME/FN`, or `NAME` when the component exports one function.
    pub function: String,
    /// The arguments: a JSON array or object.
    pub args: Value,
    /// The Run's name; an automatic one when `None`.
    pub run_name: Option<String>,
    /// Fuel budget (the runtime's default when `None`).
    pub fuel: Option<u64>,
    /// Memory limit in bytes.
    pub memory: Option<u64>,
    /// Wall-clock timeout.
    pub timeout: Option<Duration>,
    /// Replace a finished Run of the same name instead of refusing.
    pub rerun: bool,
    /// Sees the guest's output as it is written.
    pub observer: Option<OutputObserver>,
    /// Answer from the result cache when an earlier completed Run made the
    /// same call; `None` takes the runtime's default.
    pub cache: Option<bool>,
    /// Labels recorded in the Run's `tags` (see [`crate::validate_tag`]).
    pub tags: std::collections::BTreeMap<String, String>,
    /// Execute even when a cached answer exists; the new Run becomes the
    /// newest answer of its call.
    pub refresh_cache: bool,
    /// Take no cached answer that ended longer ago than this (the
    /// runtime's default when `None`).
    pub cache_ttl: Option<Duration>,
    /// On a cluster of several hosts: how many times to run the call again
    /// on another host when the host executing it dies (0: it ends
    /// `error` / `interrupted`). A single host ignores it.
    pub retries: u32,
}

impl fmt::Debug for CallRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallRequest")
            .field("function", &self.function)
            .field("args", &self.args)
            .field("run_name", &self.run_name)
            .field("rerun", &self.rerun)
            .finish_non_exhaustive()
    }
}

impl CallRequest {
    /// A call of `function` with `args`.
    pub fn new(function: impl Into<String>, args: Value) -> Self {
        CallRequest {
            function: function.into(),
            args,
            run_name: None,
            fuel: None,
            memory: None,
            timeout: None,
            rerun: false,
            observer: None,
            cache: None,
            tags: Default::default(),
            refresh_cache: false,
            cache_ttl: None,
            retries: 0,
        }
    }

    /// Run it again on another host, at most `n` times, when its host dies
    /// (see [`CallRequest::retries`]).
    pub fn retries(mut self, n: u32) -> Self {
        self.retries = n;
        self
    }

    /// Use (or not) the result cache.
    pub fn cache(mut self, cache: bool) -> Self {
        self.cache = Some(cache);
        self
    }

    crate::exec::run_settings!();

    /// Execute even when a cached answer exists (see
    /// [`CallRequest::refresh_cache`]).
    pub fn refresh_cache(mut self, refresh: bool) -> Self {
        self.refresh_cache = refresh;
        self
    }

    /// Take no cached answer that ended longer ago than `ttl`.
    pub fn cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache_ttl = Some(ttl);
        self
    }

    pub(crate) fn limits(&self, defaults: &Limits) -> Result<Limits> {
        Ok(defaults
            .with(self.fuel, self.memory, self.timeout)?
            .without_scratch())
    }
}

/// Check `args` against the function's parameters; return canonical bytes.
pub(crate) fn canonical_args(f: &FunctionDesc, args: &Value) -> Result<Vec<u8>> {
    let sig = || format!("`{}({})`", f.name, f.params.join(", "));
    match args {
        Value::Array(items) => {
            if items.len() != f.params.len() {
                return Err(Error::BadInput {
                    message: format!(
                        "{} takes {} argument{}, got {}",
                        sig(),
                        f.params.len(),
                        if f.params.len() == 1 { "" } else { "s" },
                        items.len()
                    ),
                });
            }
        }
        Value::Object(map) => {
            if let Some(extra) = map.keys().find(|k| !f.params.contains(k)) {
                return Err(Error::BadInput {
                    message: format!("unknown argument `{extra}` for {}", sig()),
                });
            }
            if let Some(missing) = f.params.iter().find(|p| !map.contains_key(*p)) {
                return Err(Error::BadInput {
                    message: format!("missing argument `{missing}` for {}", sig()),
                });
            }
        }
        _ => {
            return Err(Error::BadInput {
                message: "arguments must be a JSON array (positional) or object (by name)".into(),
            });
        }
    }
    // One form for one call: arguments by name are put in parameter order,
    // so `f(1, 2)` and `f(a=1, b=2)` have the same inputs (and digest).
    // Serialized from references: a copy of the arguments would double what
    // the largest of them takes.
    let bytes = match args {
        Value::Object(map) => {
            serde_json::to_vec(&f.params.iter().map(|p| &map[p]).collect::<Vec<_>>())
        }
        other => serde_json::to_vec(other),
    };
    bytes.map_err(|e| Error::BadInput {
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn summer() -> FunctionDesc {
        FunctionDesc {
            name: "summer".into(),
            params: vec!["a".into(), "b".into()],
            doc: None,
        }
    }

    #[test]
    fn named_and_positional_arguments_have_one_canonical_form() {
        let a: Value = serde_json::from_str(r#"{"b": 2, "a": 1}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"a":1,"b":2}"#).unwrap();
        assert_eq!(canonical_args(&summer(), &a).unwrap(), b"[1,2]");
        assert_eq!(
            canonical_args(&summer(), &a).unwrap(),
            canonical_args(&summer(), &b).unwrap()
        );
        assert_eq!(canonical_args(&summer(), &json!([1, 2])).unwrap(), b"[1,2]");
        // Nested objects are canonical too (sorted keys).
        let nested: Value = serde_json::from_str(r#"{"b": {"y": 1, "x": 2}, "a": [3]}"#).unwrap();
        assert_eq!(
            canonical_args(&summer(), &nested).unwrap(),
            br#"[[3],{"x":2,"y":1}]"#
        );
    }

    /// Found by the `call_args` fuzz target: a huge integer literal read as a
    /// float must print back to the same value, or one call has two input
    /// digests (serde_json's `float_roundtrip`).
    #[test]
    fn canonical_inputs_read_back_to_themselves() {
        let one = |v: &str| {
            let d = FunctionDesc {
                name: "f".into(),
                params: vec!["x".into()],
                doc: None,
            };
            canonical_args(&d, &serde_json::from_str(v).unwrap()).unwrap()
        };
        for v in [
            "[22222222222222222222222222]",
            "[0.1]",
            "[1e300]",
            "[-0.0]",
            "[123456789.123456789]",
        ] {
            let first = one(v);
            assert_eq!(one(std::str::from_utf8(&first).unwrap()), first, "{v}");
        }
    }

    #[test]
    fn wrong_shapes_are_refused_with_names() {
        let e = canonical_args(&summer(), &json!([1]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("takes 2 arguments, got 1"), "{e}");
        let e = canonical_args(&summer(), &json!({"a": 1}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing argument `b`"), "{e}");
        let e = canonical_args(&summer(), &json!({"a": 1, "b": 2, "c": 3}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown argument `c`"), "{e}");
        let e = canonical_args(&summer(), &json!(5))
            .unwrap_err()
            .to_string();
        assert!(e.contains("JSON array"), "{e}");
    }
}
