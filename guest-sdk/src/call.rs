//! One call, in plain Rust: find the function, decode its arguments, run it,
//! encode the result; and the errors a call can end in.
//!
//! [`CallError`] mirrors the WIT `call-error` variant case for case; the
//! component glue in `bindings` only converts. Keeping the dispatch out of
//! the glue lets host tests drive it directly.
//!
//! A panic in the function is not caught: it traps the component, and the
//! host records the Run as a trap with the panic message on stderr.

use std::fmt::{self, Display};

use serde::Serialize;

use crate::args::Args;
use crate::registry;

/// Why a call produced no result; mirrors WIT `call-error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// No function of that name in this component.
    UnknownFunction(String),
    /// The arguments did not decode.
    BadInput(String),
    /// The function returned an error; its message.
    Failed(String),
}

impl Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownFunction(name) => write!(f, "no function named `{name}`"),
            Self::BadInput(message) => write!(f, "bad input: {message}"),
            Self::Failed(message) => write!(f, "failed: {message}"),
        }
    }
}

impl std::error::Error for CallError {}

/// What a call ends in: the JSON-encoded result, or why there is none.
pub type Outcome = Result<Vec<u8>, CallError>;

/// Calls the function `name` with `args` (JSON bytes).
pub fn call(name: &str, args: &[u8]) -> Outcome {
    let function =
        registry::find(name).ok_or_else(|| CallError::UnknownFunction(name.to_owned()))?;
    let args = Args::parse(args, function.params)?;
    (function.invoke)(args)
}

/// Encodes an infallible function's result.
pub fn encode_value<T: Serialize + ?Sized>(value: &T) -> Outcome {
    serde_json::to_vec(value)
        .map_err(|e| CallError::Failed(format!("the result could not be encoded as JSON: {e}")))
}

/// Fails the call with a fallible function's error, by its message.
pub fn encode_error<E: Display + ?Sized>(error: &E) -> Outcome {
    Err(CallError::Failed(error.to_string()))
}

#[cfg(test)]
mod tests {
    //! Real `#[rh_guest::function]`s, registered by their constructors as in
    //! a component, dispatched without the component glue.

    use std::collections::BTreeMap;

    use super::*;

    /// Adds two numbers.
    ///
    /// Second paragraph.
    #[crate::function]
    fn add(a: i64, b: i64) -> i64 {
        a + b
    }

    #[crate::function]
    fn halve(n: u32) -> Result<u32, String> {
        if n.is_multiple_of(2) {
            Ok(n / 2)
        } else {
            Err(format!("{n} is odd"))
        }
    }

    #[crate::function]
    fn nothing() {}

    #[crate::function]
    fn bad_keys() -> BTreeMap<(u8, u8), u8> {
        BTreeMap::from([((1, 2), 3)])
    }

    #[crate::function]
    fn r#type(r#in: String) -> String {
        r#in
    }

    fn call_str(name: &str, args: &str) -> Result<String, CallError> {
        call(name, args.as_bytes()).map(|bytes| String::from_utf8(bytes).unwrap())
    }

    #[test]
    fn describes_every_function_sorted() {
        let functions = registry::functions();
        let names: Vec<_> = functions.iter().map(|function| function.name).collect();
        assert_eq!(names, ["add", "bad_keys", "halve", "nothing", "type"]);
        assert_eq!(functions[0].params, ["a", "b"]);
        assert_eq!(
            functions[0].doc,
            Some("Adds two numbers.\n\nSecond paragraph.")
        );
        assert_eq!(functions[2].doc, None);
        assert_eq!(functions[4].params, ["in"]);
    }

    #[test]
    fn calls_by_position_and_by_name() {
        assert_eq!(call_str("add", "[1, 2]"), Ok("3".to_owned()));
        assert_eq!(call_str("add", r#"{"b": 2, "a": 40}"#), Ok("42".to_owned()));
        assert_eq!(call_str("nothing", ""), Ok("null".to_owned()));
        assert_eq!(call_str("type", r#"["x"]"#), Ok(r#""x""#.to_owned()));
    }

    #[test]
    fn errors_map_to_call_errors() {
        assert_eq!(
            call_str("nope", "[]"),
            Err(CallError::UnknownFunction("nope".to_owned()))
        );
        assert_eq!(
            call_str("add", r#"[1, "2"]"#),
            Err(CallError::BadInput(
                "parameter `b`: invalid type: string \"2\", expected i64".to_owned()
            ))
        );
        assert_eq!(call_str("halve", "[4]"), Ok("2".to_owned()));
        assert_eq!(
            call_str("halve", "[3]"),
            Err(CallError::Failed("3 is odd".to_owned()))
        );
        assert_eq!(
            call_str("bad_keys", "[]"),
            Err(CallError::Failed(
                "the result could not be encoded as JSON: key must be a string".to_owned()
            ))
        );
    }
}
