//! JSON request bodies, bounded in what they take once parsed.
//!
//! `--max-request` bounds a body's bytes, but not its parsed form: every
//! JSON value becomes a 32-byte `serde_json::Value` (and arrays may hold
//! twice what they use while they grow), so 16 MiB of `[0,0,0,...]` parsed
//! to over 500 MiB. Before parsing, the body's values are counted from its
//! separators, and a body with more than one value per
//! [`BYTES_PER_VALUE`] bytes of `--max-request` is refused (413): what it
//! takes parsed then stays within a few times `--max-request`. Large data
//! goes in an artifact.

use super::errors::ApiError;
use hyper::StatusCode;

/// Bytes of `--max-request` each JSON value of a request may use: one
/// value per 16 bytes of the limit (a million for the default 16 MiB).
pub const BYTES_PER_VALUE: u64 = 32;

/// The most JSON values a request may hold.
pub fn max_values(max_request: u64) -> u64 {
    max_request / BYTES_PER_VALUE
}

/// Parse a `what` request's body, refusing one with too many values (413)
/// or that is not valid JSON for `T` (400).
pub fn parse<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    max_request: u64,
    what: &str,
) -> Result<T, ApiError> {
    check(bytes, max_request, what)?;
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_input(format!("the {what} request is not valid JSON: {e}")))
}

/// Refuse (413) a body holding more JSON values than `max_request` allows.
pub fn check(bytes: &[u8], max_request: u64, what: &str) -> Result<(), ApiError> {
    let max = max_values(max_request);
    if count_values(bytes, max) > max {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!(
                "the {what} request holds more than {max} JSON values (one per \
                 {BYTES_PER_VALUE} bytes of the daemon's --max-request of {max_request} bytes); \
                 pass large data as an artifact"
            ),
        ));
    }
    Ok(())
}

/// The JSON values in `bytes`, counting each key as one, and stopping once
/// past `stop`: one for the whole, plus one per `[`, `{`, `,` and `:` outside
/// strings. Exact for arrays and objects that are not empty (an empty one
/// counts one more); never less than the values a parser would make.
fn count_values(bytes: &[u8], stop: u64) -> u64 {
    let mut n = 1;
    let mut in_string = false;
    let mut escaped = false;
    for &b in bytes {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' | b',' | b':' => {
                n += 1;
                if n > stop {
                    break;
                }
            }
            _ => {}
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(text: &str) -> u64 {
        count_values(text.as_bytes(), u64::MAX)
    }

    #[test]
    fn counts_values_and_keys_outside_strings() {
        assert_eq!(count("7"), 1);
        assert_eq!(count("[0,0,0]"), 4);
        assert_eq!(count(r#"{"a": [1, 2], "b": {"c": null}}"#), 9);
        // Separators inside strings, escaped quotes included, are text.
        assert_eq!(count(r#"["a,b:[{", "\",\"", "\\"]"#), 4);
        assert_eq!(count(r#"{"function": "f", "args": ["x,y", 1]}"#), 7);
    }

    #[test]
    fn never_counts_fewer_than_the_parser_makes() {
        fn made(v: &serde_json::Value) -> u64 {
            1 + match v {
                serde_json::Value::Array(a) => a.iter().map(made).sum(),
                serde_json::Value::Object(o) => o.values().map(|v| 1 + made(v)).sum(),
                _ => 0,
            }
        }
        for text in [
            "[]",
            "{}",
            "[[],[[]],{}]",
            r#"{"a":{"b":{"c":[1,{"d":"e"}]}}}"#,
            r#"[" ", "\\\\", "\"[", 1.5e3, true, null]"#,
        ] {
            let v: serde_json::Value = serde_json::from_str(text).unwrap();
            assert!(count(text) >= made(&v), "{text}");
        }
    }

    #[test]
    fn a_body_past_the_limit_is_refused_and_the_count_stops_there() {
        let zeros = format!("[0{}]", ",0".repeat(2000));
        assert_eq!(count_values(zeros.as_bytes(), 100), 101);
        let max_request = 100 * BYTES_PER_VALUE;
        let refused = check(zeros.as_bytes(), max_request, "call").unwrap_err();
        assert_eq!(refused.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(check(b"[0,0,0]", max_request, "call").is_ok());
        let parsed: serde_json::Value = parse(b"[0,0,0]", max_request, "call").unwrap();
        assert_eq!(parsed, serde_json::json!([0, 0, 0]));
        let bad = parse::<serde_json::Value>(b"[0,", max_request, "call").unwrap_err();
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    }
}
