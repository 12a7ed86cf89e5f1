//! Decoding a call's JSON arguments into the function's parameters.
//!
//! The WIT `call` takes its arguments as JSON bytes: an array (by position)
//! or an object (by parameter name). [`Args::parse`] checks the *shape*
//! against the parameter names up front — arity, missing and unknown names,
//! all reported at once — and lines the values up by position; the generated
//! code then decodes each value into its parameter's type with
//! [`Args::take`], so a type error names the parameter it is about.
//!
//! This is plain Rust with no component glue, so it is tested on the host.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::call::CallError;

/// The arguments of one call, one JSON value per parameter, in parameter
/// order.
#[derive(Debug)]
pub struct Args {
    params: &'static [&'static str],
    values: Vec<Option<Value>>,
}

impl Args {
    /// Parses `json` (an array or an object by name) for a function whose
    /// parameters are `params`. Empty or all-whitespace input means "no
    /// arguments".
    pub fn parse(json: &[u8], params: &'static [&'static str]) -> Result<Self, CallError> {
        let value = if json.iter().all(u8::is_ascii_whitespace) {
            Value::Array(Vec::new())
        } else {
            serde_json::from_slice(json)
                .map_err(|e| bad_input(format!("arguments are not valid JSON: {e}")))?
        };
        let values = match value {
            Value::Array(items) if items.len() == params.len() => {
                items.into_iter().map(Some).collect()
            }
            Value::Array(items) => {
                return Err(bad_input(format!(
                    "expected {} ({}), got {}",
                    count(params.len(), "argument"),
                    quoted(params.iter().copied()),
                    items.len(),
                )));
            }
            Value::Object(mut map) => {
                let values: Vec<_> = params.iter().map(|param| map.remove(*param)).collect();
                let missing: Vec<_> = params
                    .iter()
                    .zip(&values)
                    .filter(|(_, value)| value.is_none())
                    .map(|(param, _)| *param)
                    .collect();
                let mut problems = Vec::new();
                if !missing.is_empty() {
                    problems.push(format!(
                        "missing {} {}",
                        noun(missing.len(), "parameter"),
                        quoted(missing.iter().copied()),
                    ));
                }
                if !map.is_empty() {
                    problems.push(format!(
                        "unknown {} {} (the parameters are {})",
                        noun(map.len(), "parameter"),
                        quoted(map.keys().map(String::as_str)),
                        quoted(params.iter().copied()),
                    ));
                }
                if !problems.is_empty() {
                    return Err(bad_input(problems.join("; ")));
                }
                values
            }
            other => {
                return Err(bad_input(format!(
                    "arguments must be a JSON array (by position) or object (by parameter name), got {}",
                    kind(&other),
                )));
            }
        };
        Ok(Self { params, values })
    }

    /// Decodes the argument of parameter number `index` into `T`, naming the
    /// parameter when it does not decode. Each argument can be taken once.
    pub fn take<T: DeserializeOwned>(&mut self, index: usize) -> Result<T, CallError> {
        let name = self.params.get(index).copied().unwrap_or("?");
        let value = self
            .values
            .get_mut(index)
            .and_then(Option::take)
            .ok_or_else(|| bad_input(format!("parameter `{name}`: no argument left to decode")))?;
        serde_json::from_value(value).map_err(|e| bad_input(format!("parameter `{name}`: {e}")))
    }
}

fn bad_input(message: String) -> CallError {
    CallError::BadInput(message)
}

/// "1 argument", "2 arguments".
fn count(n: usize, what: &str) -> String {
    format!("{n} {}", noun(n, what))
}

fn noun(n: usize, what: &str) -> String {
    if n == 1 {
        what.to_owned()
    } else {
        format!("{what}s")
    }
}

/// "`a`, `b`", or "none".
fn quoted<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<_> = names.map(|name| format!("`{name}`")).collect();
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AB: &[&str] = &["a", "b"];

    fn decode(json: &str, params: &'static [&'static str]) -> Result<(i64, String), CallError> {
        let mut args = Args::parse(json.as_bytes(), params)?;
        Ok((args.take(0)?, args.take(1)?))
    }

    fn bad(message: &str) -> Result<(i64, String), CallError> {
        Err(CallError::BadInput(message.to_owned()))
    }

    #[test]
    fn array_is_positional() {
        assert_eq!(decode(r#"[1, "x"]"#, AB), Ok((1, "x".to_owned())));
    }

    #[test]
    fn object_is_by_name_in_any_order() {
        assert_eq!(decode(r#"{"b": "x", "a": 1}"#, AB), Ok((1, "x".to_owned())));
    }

    #[test]
    fn wrong_arity_says_expected_and_got() {
        assert_eq!(
            decode(r#"[1]"#, AB),
            bad("expected 2 arguments (`a`, `b`), got 1")
        );
        assert_eq!(
            decode(r#"[1, "x", 3]"#, AB),
            bad("expected 2 arguments (`a`, `b`), got 3")
        );
        assert_eq!(
            Args::parse(b"[1, 2]", &["only"]).map(drop),
            Err(CallError::BadInput(
                "expected 1 argument (`only`), got 2".to_owned()
            ))
        );
    }

    #[test]
    fn missing_parameters_are_named() {
        assert_eq!(decode(r#"{"a": 1}"#, AB), bad("missing parameter `b`"));
        assert_eq!(decode(r#"{}"#, AB), bad("missing parameters `a`, `b`"));
    }

    #[test]
    fn unknown_keys_are_named() {
        assert_eq!(
            decode(r#"{"a": 1, "b": "x", "z": 0, "c": 0}"#, AB),
            bad("unknown parameters `c`, `z` (the parameters are `a`, `b`)")
        );
        assert_eq!(
            decode(r#"{"a": 1, "c": 0}"#, AB),
            bad("missing parameter `b`; unknown parameter `c` (the parameters are `a`, `b`)")
        );
    }

    #[test]
    fn a_bad_type_names_the_parameter() {
        assert_eq!(
            decode(r#"[1, 2]"#, AB),
            bad("parameter `b`: invalid type: integer `2`, expected a string")
        );
        assert_eq!(
            decode(r#"{"a": "one", "b": "x"}"#, AB),
            bad("parameter `a`: invalid type: string \"one\", expected i64")
        );
    }

    #[test]
    fn null_is_an_argument_not_a_missing_one() {
        let mut args = Args::parse(br#"{"a": null}"#, &["a"]).unwrap();
        assert_eq!(args.take::<Option<u8>>(0), Ok(None));
    }

    #[test]
    fn not_json_or_not_a_list() {
        let Err(CallError::BadInput(message)) = decode("[1,", AB) else {
            panic!("truncated JSON must be bad input");
        };
        assert!(
            message.starts_with("arguments are not valid JSON: "),
            "{message}"
        );
        assert_eq!(
            decode("7", AB),
            bad(
                "arguments must be a JSON array (by position) or object (by parameter name), got a number"
            )
        );
    }

    #[test]
    fn empty_input_means_no_arguments() {
        assert!(Args::parse(b"", &[]).is_ok());
        assert!(Args::parse(b" \n", &[]).is_ok());
        assert!(Args::parse(b"{}", &[]).is_ok());
        assert_eq!(
            Args::parse(b"", &["a"]).map(drop),
            Err(CallError::BadInput(
                "expected 1 argument (`a`), got 0".to_owned()
            ))
        );
    }

    #[test]
    fn each_argument_is_taken_once() {
        let mut args = Args::parse(b"[1]", &["a"]).unwrap();
        assert_eq!(args.take::<u8>(0), Ok(1));
        assert_eq!(
            args.take::<u8>(0),
            Err(CallError::BadInput(
                "parameter `a`: no argument left to decode".to_owned()
            ))
        );
    }
}
